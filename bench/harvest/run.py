"""Benchmark: ``harvest`` against ``ckanapi dump datasets --all -p 3``, same portal.

::

    .venv/bin/python -m bench.harvest.run                        # 10,000 datasets, 50 ms per answer
    .venv/bin/python -m bench.harvest.run --datasets 2000 --latency-ms 0
    .venv/bin/python -m bench.harvest.run --tools harvest -s HARVEST_PAGE_SIZE=500

Starts one simulated portal on loopback (tests/world: CKAN 2.11's Action API with
``--datasets`` generated datasets of every shape, two resources each, about 3 KB of
JSON per dataset, ``--latency-ms`` added to every answer) and runs against it, one after
the other, each in its own subprocess, measured by :func:`bench.sites.measure.run_measured`:

- ``harvest``: ``scrapy crawl harvest -a portal=URL -a since=all`` with the project's
  settings (RESOURCE_FACTS=none: metadata only, like ckanapi), storing into MongoDB (a
  SecantusDB started for the benchmark, fresh database per run; the datasets are
  counted there): package_search pages of 1000, hashes, key encoding, the raw
  repository writes;
- ``harvest-feed`` (with ``--tools``): the same without MongoDB, to a JSON lines feed;
- ``ckanapi``: ``ckanapi dump datasets --all -p 3 -r URL -O datasets.jsonl -q``:
  package_list, then package_show per dataset from 3 worker processes, JSON lines out.

Each tool's output (ckanapi's file, the harvest's MongoDB collection or feed) is
checked: every dataset id once. Measured: wall time,
datasets/s, requests, peak memory, CPU seconds of the tool and of the portal server,
the CPU of the MongoDB server during the ``harvest`` run, and the CPU other processes
used meanwhile (a busy machine skews the times). Prints a
table and writes ``bench/results/harvest-<datasets>d-<time>.json``; logs and outputs
stay in ``bench/results/harvest-<datasets>d-<time>/``.

Target: ``harvest`` at least 10 times as many datasets/s as ``ckanapi``.

Why 50 ms by default: the stand-in answers from memory at once, a real CKAN does not.
The test catalog's CKAN 2.11 serves package_show at about 68/s to one client (about 15
ms of server time each, recipes/ckan-test-server.md) and a portal on the internet adds a
round trip of 20 to 100 ms. ``--latency-ms 0`` measures the tools' own CPU instead (on
a 2-core machine shared with the stand-in and the MongoDB server).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from bench.sites.measure import PROJECT_ROOT, child_env, run_measured
from tests.fixtures.mongo import MongoServer
from tests.world import spec
from tests.world.datasets import SHAPES, DatasetsSpec
from tests.world.launcher import RunningWorld, start_world

RESULTS = PROJECT_ROOT / "bench" / "results"
TOOLS = ("ckanapi", "harvest")
SPEEDUP_TARGET = 10.0


def read_ids(path: Path, field: str) -> list[str]:
    ids = []
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    record = json.loads(line)
                    if field in record:
                        ids.append(record[field])
    return ids


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_tool(tool: str, world: RunningWorld, workdir: Path, mongo: MongoServer | None,
             settings: dict[str, str]) -> dict[str, Any]:
    url = world.portals[0].listed_url
    log = workdir / f"{tool}.log"
    python = sys.executable
    if tool == "ckanapi":
        output = workdir / "ckanapi-datasets.jsonl"
        command = [str(Path(python).with_name("ckanapi")), "dump", "datasets", "--all", "-p", "3",
                   "-r", url.rstrip("/"), "-O", str(output), "-q"]
        env = child_env()
        # ckanapi starts its worker processes as "ckanapi" from PATH.
        env["PATH"] = str(Path(python).parent) + ":" + env.get("PATH", "")
        result = run_measured(tool, command, world, log, timeout=3600, env=env)
        ids = read_ids(output, "id")
    else:
        output = workdir / f"{tool}.jsonl"
        command = [python, "-m", "scrapy", "crawl", "harvest", "-a", f"portal={url}", "-a", "since=all",
                   "-s", "LOG_LEVEL=INFO",
                   # Metadata only, as ckanapi dump; the portal is on loopback.
                   "-s", "RESOURCE_FACTS=none", "-s", "ALLOW_PRIVATE_ADDRESSES=127.0.0.0/8"]
        env = child_env()
        if tool == "harvest-feed":
            command += ["-O", str(output)]
        else:
            assert mongo is not None
            database = f"bench_{datetime.now(timezone.utc):%H%M%S}"
            env["MONGODB_URI"] = mongo.uri
            command += ["-s", f"MONGODB_DATABASE={database}", "-s", f"MONGODB_SPILL_DIR={workdir / 'spill'}"]
        for key, value in settings.items():
            command += ["-s", f"{key}={value}"]
        mongo_cpu = process_cpu_s(mongo.process.pid) if tool == "harvest" else 0.0
        result = run_measured(tool, command, world, log, timeout=3600, env=env)
        ids = read_ids(output, "dataset_id")
        if tool == "harvest":
            # The MongoDB server's CPU would otherwise count as "other processes".
            result["mongodb_server_cpu_s"] = round(process_cpu_s(mongo.process.pid) - mongo_cpu, 2)
            with mongo.client() as client:
                ids = [d["dataset_id"] for d in client[database].raw_datasets.find({}, {"dataset_id": 1})]
    result.pop("_hosts", None)
    result["datasets"] = len(ids)
    result["unique_datasets"] = len(set(ids))
    result["datasets_per_s"] = round(len(set(ids)) / result["wall_s"], 1) if result["wall_s"] else None
    return result


def compare(datasets: int, latency_ms: int, tools: Sequence[str], settings: dict[str, str],
            workdir: Path) -> dict[str, Any]:
    portal = spec.dataset_portal(spec.AddressPool("127.40.0.1"),
                                 DatasetsSpec(count=datasets, seed=7, shapes=list(SHAPES)),
                                 "bench_harvest", latency_ms=latency_ms)
    mongo = None
    if "harvest" in tools:
        mongo = MongoServer(workdir / "mongodb", port=None)
        mongo.start()
    try:
        with start_world([portal], workdir / "world") as world:
            runs = {tool: run_tool(tool, world, workdir, mongo, settings) for tool in tools}
    finally:
        if mongo is not None:
            mongo.stop()
    report: dict[str, Any] = {
        "benchmark": "harvest",
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datasets": datasets, "latency_ms": latency_ms, "settings": settings,
        "runs": runs,
    }
    complete = {tool: run["unique_datasets"] == datasets for tool, run in runs.items()}
    report["complete"] = complete
    if "ckanapi" in runs:
        for tool in runs:
            if tool != "ckanapi" and runs["ckanapi"]["datasets_per_s"]:
                report[f"speedup_{tool}"] = round(runs[tool]["datasets_per_s"] / runs["ckanapi"]["datasets_per_s"], 1)
        if "harvest" in runs and "speedup_harvest" in report:
            report["target"] = {"speedup": SPEEDUP_TARGET, "met": report["speedup_harvest"] >= SPEEDUP_TARGET
                                and all(complete.values())}
    return report


def table(report: dict[str, Any]) -> str:
    lines = [f"harvest benchmark: {report['datasets']} datasets, {report['latency_ms']} ms per answer",
             f"{'tool':<14}{'wall s':>9}{'datasets/s':>12}{'unique':>8}{'requests':>10}{'peak MB':>9}"
             f"{'cpu s':>8}{'server cpu':>11}{'other cores':>12}"]
    for tool, run in report["runs"].items():
        lines.append(f"{tool:<14}{run['wall_s']:>9}{run['datasets_per_s']:>12}{run['unique_datasets']:>8}"
                     f"{run['requests']:>10}{run['peak_rss_mb']:>9}{run['cpu_s']:>8}{run['server_cpu_s']:>11}"
                     f"{run['machine']['other_processes_cores_avg']:>12}")
    for key, value in report.items():
        if key.startswith("speedup_"):
            lines.append(f"{key.removeprefix('speedup_')} vs ckanapi: {value}x (target {SPEEDUP_TARGET:g}x)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the harvest spider against ckanapi dump.")
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="which to run, in order (default: ckanapi,harvest; also harvest-feed)")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a Scrapy setting for the harvest runs (repeatable)")
    parser.add_argument("--output", type=Path, help="the report's JSON file (default: bench/results/...)")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - {"ckanapi", "harvest", "harvest-feed"}
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}")
    settings = dict(pair.split("=", 1) for pair in args.settings)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS / f"harvest-{args.datasets}d-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    report = compare(args.datasets, args.latency_ms, tools, settings, workdir)
    shutil.rmtree(workdir / "mongodb", ignore_errors=True)
    output = args.output or RESULTS / f"harvest-{args.datasets}d-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"report: {output}")


if __name__ == "__main__":
    main()
