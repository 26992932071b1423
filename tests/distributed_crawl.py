"""Helpers for the distributed-mode tests: a throwaway Redis, and crawls run side by side.

- :class:`RedisServer`: ``redis-server`` on a free port of 127.0.0.1, data in a
  temporary directory, no persistence; ``.url``, ``.keys(pattern)``, ``.stop()``.
- :func:`run_side_by_side`: several ``scrapy crawl`` subprocesses started at once (the
  same command line as :func:`tests.crawl.run_crawl`), each with its own feed; returns
  one :class:`~tests.crawl.CrawlResult` per process.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping

from tests.crawl import PROJECT_ROOT, CrawlResult, crawl_command, read_feed

#: What every distributed crawl of the tests adds to the project settings.
DISTRIBUTED_ADDON = json.dumps({"ckancrawl.distributed.DistributedAddon": 100})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run the tests with ./scripts/test, which installs it")
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "redis.log"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.log}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> str | None:
        """One command (inline protocol); the first line of the reply, None if down."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall((" ".join(words) + "\r\n").encode())
                return connection.makefile("rb").readline().decode().strip()
        except OSError:
            return None

    def keys(self, pattern: str = "*") -> list[str]:
        import redis

        with redis.Redis(port=self.port, decode_responses=True) as client:
            return sorted(client.keys(pattern))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_side_by_side(
    spider: str,
    directory: Path,
    processes: int,
    args: Mapping[str, str],
    settings: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> list[CrawlResult]:
    directory.mkdir(parents=True, exist_ok=True)
    running = []
    for number in range(processes):
        command, child_env, feed = crawl_command(spider, directory, args, settings, env,
                                                 feed_path=directory / f"{spider}-{number}.jsonl")
        log = (directory / f"{spider}-{number}.log").open("w")
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        running.append((process, feed, log))
    deadline = time.monotonic() + timeout
    results = []
    for process, feed, log in running:
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other, _, _ in running:
                other.kill()
            raise
        finally:
            log.close()
        text = Path(log.name).read_text(encoding="utf-8", errors="replace")
        results.append(CrawlResult(process.returncode, text, read_feed(feed), feed))
    return results
