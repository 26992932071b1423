"""Run the spider's ``start()`` in one process of a distributed run, and never twice.

The first process to take the seeder lock (a Redis key holding its worker id, extended
while it seeds, expiring when it dies) reads ``start()``; the others wait until the
run is marked seeded and meanwhile take work from the shared queue. If the seeder dies
or stops before the end, its lock expires and a waiting process takes over.

Each start request and start item is claimed (``SADD`` into the run's claims set)
before it is let through, so a seeder that takes over, or a resumed run, skips what was
already seeded. A claim is ``request.meta["distributed_key"]`` when the spider gives
one, else the request fingerprint plus callback, errback and ``cb_kwargs`` (two
catalog entries with the same URL stay two pieces of work); for an item, a hash of its
fields.

Stats: ``distributed/role`` (``seeder`` or ``follower``), ``distributed/start/claimed``,
``distributed/start/already_claimed``.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from itemadapter import ItemAdapter, is_item
from scrapy.http import Request

from ckancrawl.distributed.run import DistributedRun

logger = logging.getLogger(__name__)


def claim_key(output: Any, fingerprinter: Any) -> str:
    """What identifies one piece of start output across processes and reruns."""
    if isinstance(output, Request):
        given = output.meta.get("distributed_key")
        if given is not None:
            return f"k:{given}"
        identity = [
            fingerprinter.fingerprint(output).hex(),
            getattr(output.callback, "__name__", None),
            getattr(output.errback, "__name__", None),
            output.cb_kwargs,
        ]
        return "r:" + _digest(identity)
    fields = ItemAdapter(output).asdict() if is_item(output) else repr(output)
    return "i:" + _digest(fields)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class SeedOnceMiddleware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.run = DistributedRun.of(crawler)
        self.poll = min(0.5, self.run.heartbeat_interval)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "SeedOnceMiddleware":
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        stats = self.crawler.stats
        if not await self._become_seeder():
            stats.set_value("distributed/role", "follower")
            logger.info("Run %s: start() was read by another process; taking work from the shared queue",
                        self.run.keys.prefix)
            return
        stats.set_value("distributed/role", "seeder")
        logger.info("Run %s: this process reads start() (worker %s)", self.run.keys.prefix, self.run.worker_id)
        holder = asyncio.create_task(self._hold_lock())
        fingerprinter = self.crawler.request_fingerprinter
        client, keys = self.run.client, self.run.keys
        try:
            async for output in start:
                if await client.sadd(keys.start_claims, claim_key(output, fingerprinter)):
                    stats.inc_value("distributed/start/claimed")
                    yield output
                else:
                    stats.inc_value("distributed/start/already_claimed")
            await client.set(keys.seeded, self.run.worker_id)
            logger.info("Run %s: start() read to its end", keys.prefix)
        finally:
            holder.cancel()
            try:
                await self.run.release(keys.seeder)
            except Exception as error:  # Redis gone: the lock expires on its own
                logger.warning("Run %s: could not release the seeder lock (%s)", keys.prefix, error)

    async def _become_seeder(self) -> bool:
        client, keys, me = self.run.client, self.run.keys, self.run.worker_id
        waiting_for = None
        while True:
            if await client.exists(keys.seeded):
                return False
            if await client.set(keys.seeder, me, nx=True, px=self.run.dead_after_ms):
                # The previous seeder may have finished between the two calls.
                if await client.exists(keys.seeded):
                    await self.run.release(keys.seeder)
                    return False
                return True
            holder = await client.get(keys.seeder)
            if holder and holder != waiting_for:
                logger.info("Run %s: waiting while %s reads start()", keys.prefix, holder)
                waiting_for = holder
            await asyncio.sleep(self.poll)

    async def _hold_lock(self) -> None:
        while True:
            await asyncio.sleep(self.run.dead_after_ms / 3000)
            if not await self.run.extend(self.run.keys.seeder):
                # Claims keep this safe; another process may now seed in parallel.
                logger.warning("Run %s: the seeder lock expired while this process was seeding",
                               self.run.keys.prefix)
