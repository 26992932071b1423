"""Run the resource facts pipeline in a real crawl: ``scrapy runspider`` of a test spider
that yields HarvestedDataset items from a file (tests/spiders_for_tests/), in a subprocess.

``run_resource_crawl(tmp_path, datasets, settings)`` returns a :class:`ResourceCrawl`:
the items (from a JSON lines feed), the final stats with the process's peak RSS and
event-loop lag (tests/spiders_for_tests/measurements.py), the log and the exit code.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tests.crawl import PROJECT_ROOT, SCRAPY, TEST_SETTINGS

SPIDER = PROJECT_ROOT / "tests" / "spiders_for_tests" / "datasets_from_file.py"
HANDLER = "ckancrawl.resources.download_handler.ResourceDownloadHandler"

#: What a resource crawl needs besides the project's settings.
RESOURCE_SETTINGS = {
    "ITEM_PIPELINES": json.dumps({"ckancrawl.pipelines.resource_facts.ResourceFactsPipeline": 100}),
    "DOWNLOAD_HANDLERS": json.dumps({"http": HANDLER, "https": HANDLER}),
    "EXTENSIONS": json.dumps({"tests.spiders_for_tests.measurements.Measurements": 0}),
    # The resource server listens on 127.0.0.1; everything else private stays refused.
    "RESOURCE_ALLOW_PRIVATE": "127.0.0.1/32",
    "RESOURCE_TIMEOUT": "5",
    "TELNETCONSOLE_ENABLED": "False",
}


@dataclass
class ResourceCrawl:
    returncode: int
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    log: str
    elapsed: float

    def facts(self, dataset_index: int = 0) -> list[dict[str, Any]]:
        by_id = {item["dataset_id"]: item for item in self.items}
        return by_id[f"dataset-{dataset_index}"]["resource_facts"]


def dataset(index: int, *resources: dict[str, Any] | str, portal: str = "http://portal.example") -> dict[str, Any]:
    """A CKAN dataset whose resources are URLs (str) or resource dicts."""
    listed = [{"id": f"res-{index}-{n}", "url": r} if isinstance(r, str) else r for n, r in enumerate(resources)]
    return {"portal": portal, "raw": {"id": f"dataset-{index}", "name": f"dataset-{index}", "resources": listed}}


def run_resource_crawl(
    tmp_path: Path,
    datasets: list[dict[str, Any]],
    settings: Mapping[str, Any] | None = None,
    timeout: float = 180,
    extra_args: Mapping[str, str] | None = None,
) -> ResourceCrawl:
    tmp_path.mkdir(parents=True, exist_ok=True)
    run = len(list(tmp_path.glob("resource-run-*.json")))
    datasets_file = tmp_path / f"resource-run-{run}.json"
    datasets_file.write_text(json.dumps(datasets), encoding="utf-8")
    feed = tmp_path / f"resource-run-{run}.jsonl"
    stats_file = tmp_path / f"resource-run-{run}-stats.json"
    command = [*SCRAPY, "runspider", str(SPIDER), "-a", f"datasets={datasets_file}", "-O", str(feed)]
    all_settings = {**TEST_SETTINGS, **RESOURCE_SETTINGS, "MEASUREMENTS_FILE": str(stats_file), **(settings or {})}
    for key, value in all_settings.items():
        command += ["-s", f"{key}={value}"]
    for key, value in (extra_args or {}).items():
        command += ["-a", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "CKAN_API_KEY", "GITHUB_TOKEN")}
    started = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines() if line.strip()] if feed.exists() else []
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    return ResourceCrawl(done.returncode, items, stats, done.stderr + done.stdout, time.monotonic() - started)
