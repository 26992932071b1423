"""Measure the world server's throughput: ``python -m tests.world.loadtest``.

Starts ``make_world(portals, latency_ms=...)`` and drives it with an asyncio client
that behaves like a site crawler: ``concurrency`` workers, each probing one portal at
a time over one keep-alive connection (status_show, package_search?rows=0,
organization_list and group_list pages, package_list), then moving to the next portal.
Prints one JSON line: requests/s, latency percentiles, and the server's CPU seconds
and share of one core during the run. The client runs in this process, so on a small
machine both compete for the same cores.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from urllib.parse import urlsplit

from tests.world.generate import make_world
from tests.world.launcher import start_world
from tests.world.resolver import load_hosts, lookup

PROBE = ["status_show", "package_search?rows=0", "organization_list?limit=1000&offset=0",
         "group_list?limit=1000&offset=0", "package_list?limit=1000&offset=0"]


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, target: str) -> int:
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: loadtest\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def drive(targets: list[tuple[str, int, str, str]], concurrency: int, duration: float) -> dict:
    """targets: (address, port, Host header, API path prefix) per portal."""
    cycle = itertools.cycle(targets)
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration

    async def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            address, port, host, api = next(cycle)
            try:
                reader, writer = await asyncio.open_connection(address, port)
            except OSError:
                errors += 1
                continue
            try:
                for action in PROBE:
                    if time.monotonic() >= deadline:
                        break
                    started = time.monotonic()
                    await _exchange(reader, writer, host, api + action)
                    latencies.append(time.monotonic() - started)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
            finally:
                writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else None
    return {"requests": len(latencies), "seconds": round(elapsed, 2), "requests_per_s": round(len(latencies) / elapsed),
            "latency_ms_p50": pick(0.5), "latency_ms_p99": pick(0.99), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description="Throughput of the world server.")
    parser.add_argument("--portals", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    portals = make_world(args.portals, faulty_share=0.0, latency_ms=args.latency_ms)
    with start_world(portals) as world:
        hosts = load_hosts(world.hosts_file)
        targets = []
        for portal in world.portals:
            api = portal.truth.api_url
            if api is None or not api.startswith("http://"):
                continue
            parts = urlsplit(api)
            address = lookup(hosts, parts.hostname or "")
            if address and portal.spec.hosts[-1].role == "ckan" and not portal.spec.hosts[-1].https_redirect:
                targets.append((address, parts.port, parts.netloc, parts.path))
        before = world.stats()["cpu_s"]
        result = asyncio.run(drive(targets, args.concurrency, args.duration))
        server_cpu = world.stats()["cpu_s"] - before
        result.update(portals=len(targets), latency_ms=args.latency_ms, concurrency=args.concurrency,
                      server_cpu_s=round(server_cpu, 2),
                      server_core_share=round(server_cpu / result["seconds"], 2),
                      server_cpu_us_per_request=round(server_cpu / max(1, result["requests"]) * 1e6))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
