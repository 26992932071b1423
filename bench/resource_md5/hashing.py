"""Where to hash: inline on the event loop, or in a worker thread? Measured, not guessed.

Downloads the same generated file from the loopback resource server with a bare
Twisted Agent (asyncio reactor, as Scrapy runs it) once per strategy and read size, each
in its own child process, and reports throughput, CPU seconds, peak RSS and the event
loop's lag (lateness of a 10 ms timer: p50/p99/max):

- ``receive``: read and drop (the cost of the transfer alone);
- ``inline``: ``md5.update(chunk)`` in ``dataReceived`` (what BodyReader does);
- ``thread``: chunks joined into 1 MiB batches and hashed by one worker thread
  (ordered queue; the transport is paused past 8 MiB waiting, so memory stays bounded).

Each at Twisted's default read size (64 KiB) and at the 1 MiB the resource handler
uses (``READ_SIZE``). Run from the project root:
``.venv/bin/python -m bench.resource_md5.hashing [--size-mib 2048] [--rounds 2]``;
results to stdout and ``bench/results/resource_hashing-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

from tests.resource_server.client import PROJECT_ROOT, RunningResourceServer

CHILD = r'''
import hashlib, json, os, queue, resource, sys, threading, time
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import reactor, task
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, HTTPConnectionPool

url, strategy, read_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
lags, last = [], [time.perf_counter()]

def tick():
    now = time.perf_counter()
    lags.append(max(0.0, now - last[0] - 0.01))
    last[0] = now

class Reader(Protocol):
    def __init__(self, done):
        self.done, self.received, self.md5, self.reads = done, 0, hashlib.md5(), 0
        self.produced = self.consumed = 0
        self.paused = False
        self.batch, self.batch_size = [], 0
        if strategy == "thread":
            self.queue = queue.SimpleQueue()
            threading.Thread(target=self.work, daemon=True).start()

    def connectionMade(self):
        self.transport._producer.bufferSize = read_size

    def work(self):
        while (piece := self.queue.get()) is not None:
            self.md5.update(piece)
            self.consumed += len(piece)
            if self.paused and self.produced - self.consumed < 4 << 20:
                reactor.callFromThread(self.resume)
        reactor.callFromThread(self.finish)

    def resume(self):
        if self.paused:
            self.paused = False
            self.transport.resumeProducing()

    def dataReceived(self, data):
        self.received += len(data)
        self.reads += 1
        if strategy == "inline":
            self.md5.update(data)
        elif strategy == "thread":
            self.produced += len(data)
            self.batch.append(data)
            self.batch_size += len(data)
            if self.batch_size >= 1 << 20:
                self.queue.put(b"".join(self.batch))
                self.batch, self.batch_size = [], 0
            if self.produced - self.consumed > 8 << 20 and not self.paused:
                self.paused = True
                self.transport.pauseProducing()

    def connectionLost(self, reason):
        if strategy == "thread":
            if self.batch:
                self.queue.put(b"".join(self.batch))
            self.queue.put(None)
        else:
            self.finish()

    def finish(self):
        self.done(self)

started, cpu = time.perf_counter(), os.times()

def got(response):
    def done(reader):
        wall = time.perf_counter() - started
        now = os.times()
        ordered = sorted(lags) or [0.0]
        print(json.dumps({
            "bytes": reader.received, "md5": reader.md5.hexdigest() if strategy != "receive" else None,
            "mb_per_s": round(reader.received / wall / 1e6, 1), "wall_s": round(wall, 3),
            "cpu_s": round(now.user - cpu.user + now.system - cpu.system, 2), "reads": reader.reads,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "loop_lag_ms": {"p50": round(ordered[len(ordered) // 2] * 1000, 2),
                            "p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
                            "max": round(ordered[-1] * 1000, 2)},
        }))
        reactor.stop()
    response.deliverBody(Reader(done))

task.LoopingCall(tick).start(0.01, now=False)
Agent(reactor, pool=HTTPConnectionPool(reactor)).request(b"GET", url.encode()).addCallback(got)
reactor.run()
'''

CASES = [(strategy, size) for size in (64 * 1024, 256 * 1024, 1024 * 1024) for strategy in ("receive", "inline", "thread")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resource_md5.hashing")
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    size = args.size_mib * 1024 * 1024
    runs: dict[str, list[dict[str, Any]]] = {}
    with RunningResourceServer() as server:
        url = server.url("/file.bin", size=size, seed=7)
        for _ in range(args.rounds):
            for strategy, read_size in CASES:
                done = subprocess.run([sys.executable, "-c", CHILD, url, strategy, str(read_size)], cwd=PROJECT_ROOT,
                                      capture_output=True, text=True, timeout=600)
                if done.returncode:
                    print(done.stderr[-2000:], file=sys.stderr)
                    return 1
                result = json.loads(done.stdout)
                key = f"{strategy}@{read_size // 1024}KiB"
                runs.setdefault(key, []).append(result)
                print(f"{key:>16}: {result['mb_per_s']:7.1f} MB/s  cpu {result['cpu_s']:5.2f} s  "
                      f"reads {result['reads']:6}  rss {result['peak_rss_mb']:5.1f} MB  "
                      f"lag p99 {result['loop_lag_ms']['p99']:6.2f} ms  max {result['loop_lag_ms']['max']:6.2f} ms",
                      flush=True)
    summary = {
        key: {
            "mb_per_s": statistics.median(r["mb_per_s"] for r in results),
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "loop_lag_ms_p99": statistics.median(r["loop_lag_ms"]["p99"] for r in results),
            "loop_lag_ms_max": max(r["loop_lag_ms"]["max"] for r in results),
        }
        for key, results in runs.items()
    }
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = PROJECT_ROOT / "bench" / "results" / f"resource_hashing-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "resource_hashing", "size_bytes": size, "summary": summary,
                               "runs": runs, "cpus": os.cpu_count()}, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
