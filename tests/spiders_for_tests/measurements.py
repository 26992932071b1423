"""A Scrapy extension for tests and benchmarks: the final stats as JSON, with the
process's peak RSS and how late the event loop ran its timers.

Settings: MEASUREMENTS_FILE (where the JSON goes; unset disables the extension).
Adds to the stats: ``measure/peak_rss_mb`` (the kernel's high-water mark of this
process image, VmHWM: the true peak, not a sample),
``measure/loop_lag_ms_p50``/``_p99``/``_max`` (lateness of a 10 ms timer: how long
callbacks kept the event loop busy) and ``measure/loop_samples``.
"""
from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

TICK = 0.01


def peak_rss_mb() -> float:
    """The peak resident memory of this process since it exec'd, in MB.

    Not ``ru_maxrss``: Linux carries the parent's high-water mark into a child that
    was started with vfork (Python's subprocess does), so a crawl started by a pytest
    process of 340 MB reported 340 MB however little it used itself. VmHWM belongs to
    the address space created by exec, so it is the crawl's own figure.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Measurements:
    def __init__(self, crawler: Any, path: str):
        self.crawler = crawler
        self.path = Path(path)
        self.lags: list[float] = []
        self._last = 0.0
        self._loop: task.LoopingCall | None = None
        crawler.signals.connect(self.engine_started, signal=signals.engine_started)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "Measurements":
        path = crawler.settings.get("MEASUREMENTS_FILE")
        if not path:
            raise NotConfigured
        return cls(crawler, path)

    def engine_started(self) -> None:
        self._last = time.perf_counter()
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(TICK, now=False)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lags.append(max(0.0, now - self._last - TICK))
        self._last = now

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        stats = self.crawler.stats
        stats.set_value("measure/peak_rss_mb", peak_rss_mb())
        lags = sorted(self.lags) or [0.0]
        stats.set_value("measure/loop_samples", len(self.lags))
        for name, at in (("p50", 0.5), ("p99", 0.99)):
            stats.set_value(f"measure/loop_lag_ms_{name}", round(lags[min(len(lags) - 1, int(len(lags) * at))] * 1000, 2))
        stats.set_value("measure/loop_lag_ms_max", round(lags[-1] * 1000, 2))
        self.path.write_text(json.dumps(stats.get_stats(), default=str, indent=1), encoding="utf-8")
