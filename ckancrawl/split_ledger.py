"""Where the parts of a split piece of work report, and who concludes it.

A large portal's harvest is split into id ranges, each a scheduled request (see
``HarvestSpider``); in a distributed run the parts may be done by different processes.
Each part records its result here once it is done; the call that records the last
missing part gets every result back, exactly once across all processes, and concludes
the work (the portal's ``HarvestRun``). What the concluder needs besides the results
travels with each part (its request's ``cb_kwargs``), so no part depends on another
having opened the work first.

- :class:`LocalLedger`: in memory, for a crawl in one process.
- :class:`RedisLedger`: in the distributed run's ``ledger`` hash (see
  :mod:`ckancrawl.distributed.keys`), kept and removed with the run's other keys. One
  Lua script records a part and concludes, so two processes recording the last two
  parts at the same moment cannot both conclude, or neither.

A part recorded twice (a resumed run that did it again) counts once: the first result
stays. A part that never reports (its request was in flight in a process that was
killed) leaves the work unconcluded, so the portal gets no HarvestRun from that run and
nothing is marked deleted; the next run starts over.
"""
from __future__ import annotations

import json
from typing import Any, Protocol

#: Separates the work's name from the field's name in the ledger hash.
_SEP = "\x1f"

#: KEYS[1]: the ledger hash. ARGV: work, part index, part result (JSON), number of parts,
#: separator. Returns nil, or {result 0, result 1, ...} to the call that completed the work.
_RECORD = """
local work, sep = ARGV[1], ARGV[5]
if redis.call('HEXISTS', KEYS[1], work .. sep .. 'concluded') == 1 then return nil end
if redis.call('HSETNX', KEYS[1], work .. sep .. 'part' .. sep .. ARGV[2], ARGV[3]) == 0 then return nil end
local parts = tonumber(ARGV[4])
if redis.call('HINCRBY', KEYS[1], work .. sep .. 'done', 1) < parts then return nil end
if redis.call('HSETNX', KEYS[1], work .. sep .. 'concluded', '1') == 0 then return nil end
local fields = {}
for i = 0, parts - 1 do fields[#fields + 1] = work .. sep .. 'part' .. sep .. i end
local out = redis.call('HMGET', KEYS[1], unpack(fields))
redis.call('HDEL', KEYS[1], unpack(fields))
return out
"""


class Ledger(Protocol):
    async def record(self, work: str, part: int, parts: int, result: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Record one part; every part's result, in part order, to the caller that completed the work."""


class LocalLedger:
    def __init__(self) -> None:
        self._results: dict[str, dict[int, dict[str, Any]]] = {}
        self._concluded: set[str] = set()

    async def record(self, work: str, part: int, parts: int, result: dict[str, Any]) -> list[dict[str, Any]] | None:
        results = self._results.setdefault(work, {})
        if part in results or work in self._concluded:
            return None
        results[part] = result
        if len(results) < parts:
            return None
        self._concluded.add(work)
        del self._results[work]
        return [results[i] for i in range(parts)]


class RedisLedger:
    def __init__(self, run: Any) -> None:
        self.run = run

    async def record(self, work: str, part: int, parts: int, result: dict[str, Any]) -> list[dict[str, Any]] | None:
        out = await self.run.client.eval(
            _RECORD, 1, self.run.keys.ledger, work, str(part), json.dumps(result), str(parts), _SEP
        )
        if not out:
            return None
        return [json.loads(text) if text else {} for text in out]


def ledger_for(crawler: Any) -> Ledger:
    """The distributed run's ledger when distributed mode is on, else one in memory."""
    if crawler.settings.get("CKANCRAWL_REDIS_URL"):
        from ckancrawl.distributed.run import DistributedRun

        return RedisLedger(DistributedRun.of(crawler))
    return LocalLedger()
