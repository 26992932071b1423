"""Stop the crawl cleanly before the disk it keeps its state on is full.

A crawl writes to disk as it goes: the job directory (JOBDIR: the request queue and the
run timestamp a resume needs), the MongoDB spill file (documents MongoDB did not take),
the datastore's pending rows and the GitHub ETag store. When one of those writes fails
for want of space, Scrapy drops the request it could not queue and the spill file loses
the documents it was given: work is lost without a clear sign. So this extension looks
at the free space of those directories at the start and every DISK_CHECK_INTERVAL
seconds; below DISK_MIN_FREE_MB it says which directory is short and stops the crawl
with the finish reason ``disk_full`` while every write still succeeds. With a JOBDIR,
``./scripts/crawl <spider> --resume`` (or the same JOBDIR) continues once space is free.

A crawl that starts short of space stops before its first request.

Settings:
- DISK_MIN_FREE_MB (100): the free space below which the crawl stops; 0 switches the
  extension off.
- DISK_CHECK_INTERVAL (5.0): seconds between two looks.

Stats: ``disk/lowest_free_mb`` (the least free space seen), ``disk/stopped`` (why).
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from ckancrawl.shutdown import stop_crawl

logger = logging.getLogger(__name__)

#: Settings naming directories a crawl writes to as it runs.
DATA_DIRECTORIES = ("JOBDIR", "MONGODB_SPILL_DIR", "DATASTORE_PENDING_DIR", "GITHUB_CACHE_DIR")
CLOSE_REASON = "disk_full"


def free_mb(path: Path) -> float:
    """Free space for an unprivileged writer on the filesystem that holds ``path`` (or
    would hold it: the nearest directory that exists)."""
    probe = path.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize / 1024 / 1024


class DiskSpaceGuard:
    def __init__(self, crawler: Any, minimum_mb: float, interval: float) -> None:
        self.crawler = crawler
        self.minimum_mb = minimum_mb
        self.interval = max(0.05, interval)
        settings = crawler.settings
        self.directories = {name: Path(settings.get(name)) for name in DATA_DIRECTORIES if settings.get(name)}
        self._watching: asyncio.Task[None] | None = None
        self.stopped = False
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> DiskSpaceGuard:
        minimum = crawler.settings.getfloat("DISK_MIN_FREE_MB", 100)
        if minimum <= 0:
            raise NotConfigured("DISK_MIN_FREE_MB is 0")
        return cls(crawler, minimum, crawler.settings.getfloat("DISK_CHECK_INTERVAL", 5.0))

    def short_of_space(self) -> str | None:
        """Why the crawl must stop, or None while every directory has room."""
        lowest = None
        for name, path in self.directories.items():
            try:
                free = free_mb(path)
            except OSError as exc:  # the writer reports an unusable directory itself
                logger.debug("Cannot see the free space of %s %s: %s", name, path, exc)
                continue
            lowest = free if lowest is None else min(lowest, free)
            if free < self.minimum_mb:
                self._record_lowest(lowest)
                return (f"only {free:.1f} MB are free on the disk of {name} ({path}), less than "
                        f"DISK_MIN_FREE_MB={self.minimum_mb:g}")
        if lowest is not None:
            self._record_lowest(lowest)
        return None

    def _record_lowest(self, free: float) -> None:
        stats = self.crawler.stats
        seen = stats.get_value("disk/lowest_free_mb")
        stats.set_value("disk/lowest_free_mb", round(free if seen is None else min(seen, free), 1))

    async def spider_opened(self, spider: Any) -> None:
        if not self.directories:
            return
        reason = self.short_of_space()
        if reason is not None:
            self._stop(reason, starting=True)
            return
        self._watching = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self.stopped:
            await asyncio.sleep(self.interval)
            reason = self.short_of_space()
            if reason is not None:
                self._stop(reason, starting=False)

    def _stop(self, reason: str, starting: bool) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.crawler.stats.set_value("disk/stopped", reason)
        resume = ("; with a JOBDIR, resume with ./scripts/crawl <spider> --resume (or the same JOBDIR)"
                  if self.crawler.settings.get("JOBDIR") else "")
        logger.error(
            "Stopping the crawl %s: %s. Free space there (or set DISK_MIN_FREE_MB lower) and run it again%s.",
            "before it starts" if starting else "while every write still succeeds", reason, resume,
        )
        stop_crawl(self.crawler, CLOSE_REASON)

    def spider_closed(self, spider: Any, reason: str) -> None:
        self.stopped = True
        if self._watching is not None:
            self._watching.cancel()
