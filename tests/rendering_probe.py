"""Run the render probe spider (tests/spiders_for_tests/render_probe.py) in a subprocess
with a rendering backend, as a user's crawl would: ``run_probe(tmp_path, backend,
urls=[...], render=[...], settings={...})`` returns a :class:`~tests.crawl.CrawlResult`
whose ``item(url, mode)`` finds one page's item."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping

from tests.crawl import PROJECT_ROOT, SCRAPY, TEST_SETTINGS, CrawlResult

SPIDER = PROJECT_ROOT / "tests" / "spiders_for_tests" / "render_probe.py"
RENDERING_ADDON = json.dumps({"ckancrawl.rendering.RenderingAddon": 110})


class ProbeResult(CrawlResult):
    def item(self, url: str, mode: str) -> dict[str, Any]:
        found = [i for i in self.items if i["url"] == url and i["mode"] == mode]
        assert len(found) == 1, (url, mode, self.items)
        return found[0]


def run_probe(tmp_path: Path, backend: str | None, urls: list[str] = (), render: list[str] = (),
              settings: Mapping[str, Any] | None = None, timeout: float = 120) -> ProbeResult:
    feed = tmp_path / f"probe-{len(list(tmp_path.glob('probe-*.jsonl')))}.jsonl"
    command = [*SCRAPY, "runspider", str(SPIDER), "-a", f"urls={','.join(urls)}", "-a", f"render={','.join(render)}"]
    all_settings = {**TEST_SETTINGS, "ADDONS": RENDERING_ADDON, **({"RENDERING_BACKEND": backend} if backend else {}),
                    **(settings or {})}
    for key, value in all_settings.items():
        command += ["-s", f"{key}={value}"]
    command += ["-O", str(feed)]
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "CKAN_API_KEY", "GITHUB_TOKEN")}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()] if feed.exists() else []
    return ProbeResult(done.returncode, done.stderr + done.stdout, items, feed)
