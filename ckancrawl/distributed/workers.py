"""The processes of a distributed run: one run timestamp, heartbeats, when to stop.

- At open, every process adopts the run's ``run_timestamp`` (the first process to
  arrive sets it), so all items of one run carry the same one, whichever process made
  them. A process given ``-a run_timestamp=...`` that differs from the run's stops with
  the reason ``run_timestamp_mismatch``.
- Every ``CKANCRAWL_REDIS_HEARTBEAT`` seconds a process writes whether it is busy (its
  engine is not idle) into a key that expires after five beats (at least 5 s), and
  keeps the run's keys for ``CKANCRAWL_REDIS_KEEP`` seconds more.
- An idle process (nothing in hand, shared queue empty) stays open while another
  process is busy, because that one may still schedule requests (redirects, retries,
  follow-up pages); it stops when every other process is idle or gone.
- When Redis stops answering for longer than a dead worker's silence (five beats, at
  least 5 s), an idle process stops with the reason ``redis_unreachable`` instead of
  waiting forever; the run stays in Redis to be resumed.
- When a process stops, it leaves the run; the last one out of a finished run (seeded,
  queue empty) deletes the run's keys. A run stopped early (shutdown, crash, close
  reason other than ``finished``) keeps its queue, claims and timestamp for
  ``CKANCRAWL_REDIS_KEEP`` seconds: start a process with the same
  ``CKANCRAWL_REDIS_RUN`` to resume it. Requests a killed process held in flight are
  lost, as with Scrapy's own JOBDIR.

Stats: ``distributed/run``, ``distributed/worker``, ``distributed/left`` (``removed``
the run's keys, ``others_working``, ``kept_for_resume`` or ``unreachable``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider

from ckancrawl.distributed.run import DistributedRun

logger = logging.getLogger(__name__)


class WorkerRegistry:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.run = DistributedRun.of(crawler)
        #: Whether another process was busy at the last heartbeat.
        self.others_busy = False
        #: Since when heartbeats fail (monotonic time), None while they succeed.
        self.failing_since: float | None = None
        self._beating: asyncio.Task[None] | None = None
        # Read before any component touches the property (FeedExporter reads every
        # spider attribute at open), which would fill in "now".
        self._explicit_timestamp = getattr(crawler.spider, "given_run_timestamp", None)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "WorkerRegistry":
        return cls(crawler)

    async def spider_opened(self, spider: Any) -> None:
        run = self.run
        stats = self.crawler.stats
        stats.set_value("distributed/run", run.keys.prefix)
        stats.set_value("distributed/worker", run.worker_id)
        await self._agree_run_timestamp(spider)
        await run.client.sadd(run.keys.workers, run.worker_id)
        await self._beat()
        self._beating = asyncio.create_task(self._heartbeats())
        logger.info("Joined distributed run %s at %s as %s", run.keys.prefix, run.url, run.worker_id)

    async def _agree_run_timestamp(self, spider: Any) -> None:
        if not isinstance(getattr(type(spider), "run_timestamp", None), property):
            return
        client, key = self.run.client, self.run.keys.run_timestamp
        explicit = self._explicit_timestamp
        await client.set(key, explicit or spider.run_timestamp, nx=True)
        agreed = await client.get(key)
        if explicit is not None and explicit != agreed:
            logger.error(
                "run_timestamp=%s was given, but the distributed run %s has run_timestamp %s; "
                "give the same one to every process, or none", explicit, self.run.keys.prefix, agreed,
            )
            raise CloseSpider("run_timestamp_mismatch")
        if agreed != spider.run_timestamp:
            logger.info("Using the distributed run's run_timestamp %s", agreed)
        spider._run_timestamp = agreed  # where CkanApiSpider keeps it (no setter)
        spider.run_timestamp  # records it in the JOBDIR state too

    def spider_idle(self, spider: Any) -> None:
        if self.failing_since is not None:
            if time.monotonic() - self.failing_since > self.run.dead_after_ms / 1000:
                raise CloseSpider("redis_unreachable")
            raise DontCloseSpider  # a blip: wait for Redis a little
        if self.others_busy:
            raise DontCloseSpider

    async def spider_closed(self, spider: Any, reason: str) -> None:
        if self._beating is not None:
            self._beating.cancel()
        run = self.run
        try:
            left = await run.leave(finished=reason == "finished")
        except Exception as error:  # Redis gone: the keys expire on their own
            self.crawler.stats.set_value("distributed/left", "unreachable")
            logger.error("Could not leave the distributed run %s (%s); its keys stay in Redis for resuming",
                         run.keys.prefix, error)
            await run.close()
            return
        stats = self.crawler.stats
        if left < 0:
            stats.set_value("distributed/left", "removed")
            logger.info("Distributed run %s is finished; its keys were removed from Redis", run.keys.prefix)
        elif reason == "finished":
            stats.set_value("distributed/left", "others_working")
            logger.info("Left distributed run %s; %d other process(es) still working", run.keys.prefix, left)
        else:
            stats.set_value("distributed/left", "kept_for_resume")
            logger.warning(
                "Distributed run %s stopped early (%s); its queue stays in Redis for %d s: start a process "
                "with the same CKANCRAWL_REDIS_RUN to resume it", run.keys.prefix, reason, run.keep_ms // 1000,
            )
        await run.close()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.run.heartbeat_interval)
            try:
                await self._beat()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    logger.warning("Distributed run heartbeat failed (%s); retrying", error)
                self._wake_engine()
            else:
                if self.failing_since is not None:
                    logger.info("Distributed run heartbeat works again")
                self.failing_since = None

    async def _beat(self) -> None:
        run, keys = self.run, self.run.keys
        busy = self._busy()
        pipe = run.client.pipeline(transaction=False)
        pipe.set(keys.heartbeat(run.worker_id), "busy" if busy else "idle", px=run.dead_after_ms)
        # Back in the set if another process pruned it during a stall.
        pipe.sadd(keys.workers, run.worker_id)
        for key in keys.kept():
            pipe.pexpire(key, run.keep_ms)
        pipe.smembers(keys.workers)
        pipe.zcard(keys.requests)
        *_, members, queued = await pipe.execute()
        others = sorted(m for m in members if m != run.worker_id)
        states = await run.client.mget([keys.heartbeat(m) for m in others]) if others else []
        self.others_busy = "busy" in states
        # A process that holds a request counts as busy, and so does one whose engine
        # sees the shared queue non-empty: wake it whenever it has room for queued work,
        # or Scrapy would look at the queue again only on its 5 s heartbeat.
        if (queued and self._has_room()) or (not busy and not self.others_busy):
            self._wake_engine()

    def _busy(self) -> bool:
        engine = self.crawler.engine
        try:
            return engine is not None and not engine.spider_is_idle()
        except RuntimeError:  # the engine has no slot: not started or closing
            return False

    def _has_room(self) -> bool:
        slot = getattr(self.crawler.engine, "_slot", None)
        has_room = getattr(getattr(slot, "scheduler", None), "has_room", None)
        return has_room() if has_room is not None else True

    def _wake_engine(self) -> None:
        # Scrapy looks at an idle scheduler only every 5 s; ask it to look now that
        # another process queued work, or stopped being busy (then it may close).
        slot = getattr(self.crawler.engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None:
            nextcall.schedule()
