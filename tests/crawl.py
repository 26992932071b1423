"""Run a real ``scrapy crawl`` in a subprocess, as a user would, and read what it wrote.

The Twisted reactor cannot be restarted inside the pytest process, and a subprocess
also proves the command line, settings module and spider arguments work.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRAPY = [sys.executable, "-m", "scrapy"]

#: Fast failure handling for tests: the world's slow answers take 20 s.
TEST_SETTINGS = {
    "DOWNLOAD_TIMEOUT": "3",
    "RETRY_BACKOFF_BASE": "0.05",
    "AUTOTHROTTLE_START_DELAY": "0.05",
    "LOG_LEVEL": "INFO",
    # Crawls that fail on purpose would be flagged (exit 3); tests that check the exit
    # status of a flagged run ask for it.
    "JOB_SUMMARY_EXIT_CODE": "0",
    # Every world, stand-in and fixture listens on 127.x; the tests that prove the
    # address guard turn this off.
    "ALLOW_PRIVATE_ADDRESSES": "true",
}

#: Environment of every test crawl.
TEST_ENV: dict[str, str] = {}


@dataclass
class CrawlResult:
    returncode: int
    log: str
    items: list[dict[str, Any]]
    feed: Path | None

    def by(self, field: str) -> dict[Any, dict[str, Any]]:
        return {item[field]: item for item in self.items}

    def stats_value(self, key: str) -> Any:
        """A value from the final stats dump in the log (``'key': value,``)."""
        marker = f"'{key}': "
        for line in reversed(self.log.splitlines()):
            if marker in line:
                return line.split(marker, 1)[1].rstrip(",}").strip()
        return None


def crawl_command(
    spider: str,
    tmp_path: Path,
    args: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    feed: bool = True,
    feed_path: Path | None = None,
) -> tuple[list[str], dict[str, str], Path]:
    """The command line, environment and feed path of a test crawl (every test crawl
    is built here: run_crawl, start_crawl, tests.distributed_crawl)."""
    command = [*SCRAPY, "crawl", spider]
    for key, value in (args or {}).items():
        command += ["-a", f"{key}={value}"]
    for key, value in {**TEST_SETTINGS, **(settings or {})}.items():
        command += ["-s", f"{key}={value}"]
    feed_path = feed_path or tmp_path / f"{spider}-{len(list(tmp_path.glob('*.jsonl')))}.jsonl"
    if feed:
        command += ["-O", str(feed_path)]
    child_env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "CKAN_API_KEY", "GITHUB_TOKEN")}
    child_env.update(TEST_ENV)
    child_env.update(env or {})
    return command, child_env, feed_path


def read_feed(feed_path: Path) -> list[dict[str, Any]]:
    if not feed_path.exists():
        return []
    return [json.loads(line) for line in feed_path.read_text(encoding="utf-8").splitlines() if line.strip()]


def start_crawl(
    spider: str,
    tmp_path: Path,
    args: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> subprocess.Popen:
    """A crawl in the background (for tests that kill it); its log goes to ``log_path``."""
    command, child_env, _ = crawl_command(spider, tmp_path, args, settings, env, feed=False)
    log = open(log_path or tmp_path / f"{spider}-background.log", "ab")
    try:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        log.close()


def run_crawl(
    spider: str,
    tmp_path: Path,
    args: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    feed: bool = True,
    timeout: float = 240,
) -> CrawlResult:
    command, child_env, feed_path = crawl_command(spider, tmp_path, args, settings, env, feed)
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=child_env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    items = read_feed(feed_path) if feed else []
    return CrawlResult(done.returncode, done.stderr + done.stdout, items, feed_path if feed else None)


def wait_until(condition: Callable[[], bool], process: Any, timeout: float = 60) -> None:
    """Until ``condition`` holds; fails if the crawl ``process`` ends first or it takes too long."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the crawl ended before the kill point"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.05)


def kill_at_each(start: Callable[[], Any], points: list[Callable[[], bool]]) -> None:
    """For each point: start the crawl, wait until the point is reached, kill -9 it."""
    for reached in points:
        process = start()
        try:
            wait_until(reached, process)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
