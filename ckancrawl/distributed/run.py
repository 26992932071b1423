"""One process's view of a distributed run: its keys, its worker id, its Redis client.

Shared by the seeding middleware and the worker registry of the same crawler. The
client is redis-py's asyncio client, so coordination never blocks the event loop (the
scheduler's queue calls are synchronous by Scrapy's scheduler interface; they are
single round trips to Redis).

Settings read here: ``CKANCRAWL_REDIS_URL`` (its password, if any, from the
``CKANCRAWL_REDIS_PASSWORD`` environment variable), ``CKANCRAWL_REDIS_RUN``,
``CKANCRAWL_REDIS_HEARTBEAT`` (1.0 s), ``CKANCRAWL_REDIS_KEEP`` (86400 s).
"""
from __future__ import annotations

import os
import secrets
import socket
from typing import Any
from weakref import WeakKeyDictionary

from scrapy.exceptions import NotConfigured

from ckancrawl.distributed.connection import async_client, check_url
from ckancrawl.distributed.keys import RunKeys, run_name

#: Delete KEYS[1] if it holds ARGV[1] (a lock released by its owner only).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Extend KEYS[1] to ARGV[2] ms if it holds ARGV[1].
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

#: A worker leaves: forget it, forget workers whose heartbeat expired, and when nobody
#: is left and the run is complete (ARGV[3] == '1', seeded, queue empty), delete the
#: run. Returns the number of workers still alive, or -1 when the run was deleted.
#: KEYS: workers, seeded, requests, then every key of the run. ARGV: worker id,
#: heartbeat key prefix, finished flag. Atomic, so two workers leaving at once cannot
#: both believe the other one is still there.
_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', ARGV[2] .. ARGV[1])
local alive = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. member) == 1 then
    alive = alive + 1
  else
    redis.call('SREM', KEYS[1], member)
  end
end
if alive == 0 and ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1
   and redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('DEL', unpack(KEYS, 4))
  return -1
end
return alive
"""

_runs: "WeakKeyDictionary[Any, DistributedRun]" = WeakKeyDictionary()


class DistributedRun:
    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        url = settings.get("CKANCRAWL_REDIS_URL")
        if not url:
            raise NotConfigured("CKANCRAWL_REDIS_URL is not set")
        self.url: str = check_url(url)
        self.run: str = run_name(settings.get("CKANCRAWL_REDIS_RUN"))
        self.keys = RunKeys.of(crawler.spidercls.name, self.run)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.heartbeat_interval = max(0.05, settings.getfloat("CKANCRAWL_REDIS_HEARTBEAT", 1.0))
        self.keep_ms = int(max(60.0, settings.getfloat("CKANCRAWL_REDIS_KEEP", 86400.0)) * 1000)
        self._client: Any = None

    @classmethod
    def of(cls, crawler: Any) -> "DistributedRun":
        """The run of ``crawler`` (one per crawler); NotConfigured when the mode is off."""
        run = _runs.get(crawler)
        if run is None:
            run = _runs[crawler] = cls(crawler)
        return run

    @property
    def dead_after_ms(self) -> int:
        """A worker (or seeder) silent this long is taken for dead."""
        return int(max(5 * self.heartbeat_interval, 5.0) * 1000)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = async_client(self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def release(self, key: str) -> None:
        await self.client.eval(_RELEASE, 1, key, self.worker_id)

    async def extend(self, key: str) -> bool:
        return bool(await self.client.eval(_EXTEND, 1, key, self.worker_id, self.dead_after_ms))

    async def leave(self, finished: bool) -> int:
        keys = self.keys
        return int(await self.client.eval(
            _LEAVE, 3 + len(keys.run_state()),
            keys.workers, keys.seeded, keys.requests, *keys.run_state(),
            self.worker_id, keys.heartbeat_prefix, "1" if finished else "0",
        ))
