"""Benchmark: the ``sites`` spider against the original threaded profiler, same world.

::

    .venv/bin/python -m bench.sites.run                  # 2,000 portals, 100 ms, seed 0
    .venv/bin/python -m bench.sites.run --portals 200    # quick mode
    .venv/bin/python -m bench.sites.run --tools spider -s CONCURRENT_REQUESTS=256

Starts one simulated world (``tests.world.generate.make_world``: healthy CKAN portals of
every version and layout, 5 % faulty ones, ``--latency-ms`` on every answer) and runs,
one after the other against it, each in its own subprocess:

- ``original``: :mod:`bench.sites.original` (10 threads, requests, 15 s timeout, 2
  retries, len() of the list calls), reading ``site_urls.csv``, writing ``ckan_stats.csv``;
- ``spider``: ``scrapy crawl sites -a urls=urls.txt -O sites.jsonl`` with the project's
  settings, no item pipelines, and the world's resolver.

The world's statistics are reset before each run (the 429 counters are re-armed, so both
tools meet the same faults). For each tool: wall time, requests the world received,
requests/s, peak memory, the most requests in flight at one host, the five values per
portal judged against the ground truth (:mod:`bench.sites.judge`), when sites finished
(50/90/99/100 %), and per world preset the requests per site and finish times. Prints a
table and writes ``bench/results/sites-<portals>p-<time>.json``; logs and outputs of the
run stay in ``bench/results/sites-<portals>p-<time>/``.

Targets: the spider at least 8 times faster than the original, at most 4 requests in
flight per site, no wrong value (unknown with a reason is acceptable).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.sites.judge import judge, original_values
from bench.sites.measure import PER_SITE_LIMIT, PROJECT_ROOT, child_env, run_measured
from tests.world.generate import make_world
from tests.world.launcher import RunningWorld, start_world
from tests.world.spec import PortalSpec

RESULTS = PROJECT_ROOT / "bench" / "results"
TOOLS = ("original", "spider")
SPEEDUP_TARGET = 8.0
#: Progress lines every half second date the spider's items (the feed keeps their order).
SPIDER_LOG_SETTINGS = {
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "%(created).3f [%(name)s] %(levelname)s: %(message)s",
    "LOGSTATS_INTERVAL": "0.5",
}
#: The world lives on 127.x, which the address guard refuses by default.
WORLD_ACCESS = {"ALLOW_PRIVATE_ADDRESSES": "127.0.0.0/8"}
_LOGSTATS = re.compile(r"^(\d+\.\d+) \[scrapy\.extensions\.logstats\] INFO: Crawled \d+ pages .*scraped (\d+) items")
_ORIGINAL_ROW = re.compile(r"^(\d+\.\d+) - \w+ - \[(\d+)/\d+\]")
_STAT_LINE = re.compile(r"^\s*[{ ]?'([^']+)': (-?\d+(?:\.\d+)?),?}?$")


# -- the tools ----------------------------------------------------------------------------


def run_original(world: RunningWorld, workdir: Path, extra_args: Sequence[str] = (),
                 timeout: float = 3 * 3600) -> dict[str, Any]:
    source, target = workdir / "site_urls.csv", workdir / "ckan_stats.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "url"])
        writer.writerows([portal.name, portal.listed_url] for portal in world.portals)
    command = [sys.executable, "-m", "bench.sites.original", str(source), str(target),
               "--hosts-file", str(world.hosts_file), *extra_args]
    result = run_measured("original", command, world, workdir / "original.log", timeout)
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    result["output"] = str(target)
    result["correctness"] = judge(world, [{"listed_url": row["url"], **original_values(row)} for row in rows],
                                  reasons=False)
    finished: dict[int, float] = {}
    for line in Path(result["log"]).read_text(encoding="utf-8", errors="replace").splitlines():
        match = _ORIGINAL_ROW.match(line)
        if match:
            finished[int(match.group(2)) - 1] = float(match.group(1)) - result["started_epoch"]
    result["_finished"] = [finished.get(i) for i in range(len(world.portals))]
    return result


def run_spider(world: RunningWorld, workdir: Path, settings: dict[str, str] | None = None,
               timeout: float = 3 * 3600) -> dict[str, Any]:
    urls = world.write_urls_file(workdir / "urls.txt")
    feed = workdir / "sites.jsonl"
    chosen = {"ITEM_PIPELINES": "{}", **WORLD_ACCESS, **world.scrapy_settings(), **SPIDER_LOG_SETTINGS,
              **(settings or {})}
    command = [sys.executable, "-m", "scrapy", "crawl", "sites", "-a", f"urls={urls}", "-O", str(feed)]
    for key, value in chosen.items():
        command += ["-s", f"{key}={value}"]
    result = run_measured("spider", command, world, workdir / "spider.log", timeout, env=child_env())
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines() if line.strip()]
    result["output"] = str(feed)
    result["settings"] = dict(settings or {})
    result["correctness"] = judge(world, items, reasons=True)
    problems = world.judge(items)
    result["full_truth"] = {
        "portals_with_mismatches": len(problems),
        "examples": dict(list(problems.items())[:12]),
    }
    log = Path(result["log"]).read_text(encoding="utf-8", errors="replace")
    result["scrapy_stats"] = _scrapy_stats(log)
    result["_finished"] = _spider_finish_times(world, items, log, result["started_epoch"], result["wall_s"])
    return result


def _scrapy_stats(log: str) -> dict[str, float]:
    """The numbers of the final stats dump."""
    stats: dict[str, float] = {}
    block = log.rsplit("Dumping Scrapy stats:", 1)
    if len(block) == 2:
        for line in block[1].splitlines()[1:]:
            match = _STAT_LINE.match(line)
            if match:
                value = float(match.group(2))
                stats[match.group(1)] = int(value) if value.is_integer() else value
            if line.rstrip().endswith("}"):
                break
    return stats


def _spider_finish_times(world: RunningWorld, items: list[dict[str, Any]], log: str, started: float,
                         wall: float) -> list[float | None]:
    """Per portal, when its item was scraped: the feed has items in scraped order, the
    progress lines say how many were scraped by when (to within LOGSTATS_INTERVAL)."""
    samples = []
    for line in log.splitlines():
        match = _LOGSTATS.match(line)
        if match:
            samples.append((float(match.group(1)) - started, int(match.group(2))))
    index = {portal.listed_url: i for i, portal in enumerate(world.portals)}
    finished: list[float | None] = [None] * len(world.portals)
    position = 0
    for rank, item in enumerate(items, start=1):
        while position < len(samples) and samples[position][1] < rank:
            position += 1
        when = samples[position][0] if position < len(samples) else wall
        if item.get("listed_url") in index:
            finished[index[item["listed_url"]]] = round(when, 2)
    return finished


# -- the comparison ------------------------------------------------------------------------


def _quantiles(finished: Iterable[float | None]) -> dict[str, float | None]:
    times = sorted(t for t in finished if t is not None)
    if not times:
        return {}
    pick = lambda share: round(times[min(len(times) - 1, max(0, int(round(share * len(times))) - 1))], 2)
    return {"50%": pick(0.5), "90%": pick(0.9), "99%": pick(0.99), "100%": pick(1.0)}


def _per_preset(world: RunningWorld, runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    presets: dict[str, dict[str, Any]] = {}
    for i, portal in enumerate(world.portals):
        entry = presets.setdefault(portal.preset, {"sites": 0})
        entry["sites"] += 1
        for tool, run in runs.items():
            hosts = run["_hosts"]
            sent = sum(hosts.get(address, {}).get("requests", 0) for address in portal.addresses)
            entry.setdefault(f"{tool}_requests", 0)
            entry[f"{tool}_requests"] += sent
            entry.setdefault(f"_{tool}_finished", []).append(run["_finished"][i])
    for entry in presets.values():
        for tool in runs:
            entry[f"{tool}_requests_per_site"] = round(entry.pop(f"{tool}_requests") / entry["sites"], 1)
            times = [t for t in entry.pop(f"_{tool}_finished") if t is not None]
            entry[f"{tool}_finished_median_s"] = round(statistics.median(times), 1) if times else None
            entry[f"{tool}_finished_max_s"] = round(max(times), 1) if times else None
    return dict(sorted(presets.items()))


def _last_to_finish(world: RunningWorld, finished: list[float | None], count: int = 15) -> list[dict[str, Any]]:
    order = sorted((t, i) for i, t in enumerate(finished) if t is not None)[-count:]
    return [{"portal": world.portals[i].name, "preset": world.portals[i].preset, "finished_s": round(t, 2)}
            for t, i in reversed(order)]


def targets(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    spider, original = runs.get("spider"), runs.get("original")
    if spider and original:
        speedup = original["wall_s"] / spider["wall_s"]
        out["speedup"] = {"target": f">= {SPEEDUP_TARGET:g}x", "measured": round(speedup, 2),
                          "met": speedup >= SPEEDUP_TARGET}
    if spider:
        out["max_in_flight_per_site"] = {"target": f"<= {PER_SITE_LIMIT}", "measured": spider["max_in_flight_per_host"],
                                         "met": spider["max_in_flight_per_host"] <= PER_SITE_LIMIT}
        wrong = spider["correctness"]["wrong"]
        out["wrong_values"] = {"target": "0", "measured": wrong, "met": wrong == 0}
        unexplained = spider["correctness"]["unknown_without_reason"]
        out["unknown_without_reason"] = {"target": "0", "measured": unexplained, "met": unexplained == 0}
    return out


def world_portals(portals: int, latency_ms: int, seed: int, faulty_share: float) -> list[PortalSpec]:
    return make_world(portals, faulty_share=faulty_share, latency_ms=latency_ms, seed=seed)


def compare(world: RunningWorld, workdir: Path, tools: Sequence[str] = TOOLS,
            spider_settings: dict[str, str] | None = None, original_args: Sequence[str] = (),
            timeout: float = 3 * 3600) -> dict[str, Any]:
    """Run ``tools`` one after the other against ``world``; the report as a dict."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if tool == "original":
            runs[tool] = run_original(world, workdir, original_args, timeout)
        elif tool == "spider":
            runs[tool] = run_spider(world, workdir, spider_settings, timeout)
        else:
            raise ValueError(f"unknown tool {tool!r}; use {', '.join(TOOLS)}")
    presets: dict[str, int] = {}
    for portal in world.portals:
        presets[portal.preset] = presets.get(portal.preset, 0) + 1
    report = {
        "world": {"portals": len(world.portals), "presets": dict(sorted(presets.items())),
                  "hosts": sum(len(p.addresses) for p in world.portals)},
        "targets": targets(runs),
        "per_preset": _per_preset(world, runs),
        "tools": {},
    }
    for tool, run in runs.items():
        run["finished"] = _quantiles(run["_finished"])
        run["last_to_finish"] = _last_to_finish(world, run["_finished"])
        report["tools"][tool] = {key: value for key, value in run.items() if not key.startswith("_")}
    return report


# -- output -----------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    tools = report["tools"]
    rows = [("", *tools)]
    line = lambda label, get: rows.append((label, *(str(get(run)) for run in tools.values())))
    line("wall time (s)", lambda r: r["wall_s"])
    line("requests sent", lambda r: r["requests"])
    line("requests/s", lambda r: r["requests_per_s"])
    line("peak RSS (MB)", lambda r: r["peak_rss_mb"])
    line("CPU (s)", lambda r: r["cpu_s"])
    line("world server CPU (s)", lambda r: r["server_cpu_s"])
    line("other processes (cores)", lambda r: r["machine"]["other_processes_cores_avg"])
    line("max in flight per site", lambda r: r["max_in_flight_per_host"])
    line("sites done 50/90/99/100% (s)", lambda r: " / ".join(str(v) for v in r["finished"].values()))
    line("values right", lambda r: r["correctness"]["right"])
    line("values wrong", lambda r: r["correctness"]["wrong"])
    line("values unknown", lambda r: r["correctness"]["unknown"])
    for name in next(iter(tools.values()))["correctness"]["per_value"]:
        line(f"  {name} r/w/u", lambda r, n=name: "/".join(str(v) for v in r["correctness"]["per_value"][n].values()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    text = "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)
    for name, target in report["targets"].items():
        text += f"\n{name}: {target['measured']} (target {target['target']}) {'met' if target['met'] else 'MISSED'}"
    for tool, run in tools.items():
        causes = run["correctness"]["wrong_causes"]
        if causes:
            text += f"\n{tool} wrong values: " + "; ".join(f"{cause} x{n}" for cause, n in causes.items())
    return text


def code_version() -> dict[str, Any]:
    """The commit measured (at the start of the run), and whether the spider's code had
    changes not committed."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_changes_in_ckancrawl": bool(git("status", "--porcelain", "--", "ckancrawl"))}


def _settings(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-s {pair!r}: give KEY=VALUE")
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the sites spider against the original profiler.")
    parser.add_argument("--portals", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faulty-share", type=float, default=0.05)
    parser.add_argument("--tools", default=",".join(TOOLS), help="which to run, in order (default: original,spider)")
    parser.add_argument("-s", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a Scrapy setting for the spider's run (repeatable)")
    parser.add_argument("--output", type=Path, help="the report's JSON file (default: bench/results/...)")
    args = parser.parse_args(argv)
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"sites-{args.portals}p-{stamp}"
    workdir = RESULTS / name
    workdir.mkdir(parents=True, exist_ok=True)
    portals = world_portals(args.portals, args.latency_ms, args.seed, args.faulty_share)
    measured = code_version()
    started = time.monotonic()
    with start_world(portals, workdir / "world") as world:
        print(f"world of {len(portals)} portals ready in {time.monotonic() - started:.1f} s; running "
              f"{', '.join(tools)} (logs in {workdir})", flush=True)
        report = compare(world, workdir, tools, _settings(args.settings))
    report["world"].update(latency_ms=args.latency_ms, seed=args.seed, faulty_share=args.faulty_share)
    report["run"] = {"utc": stamp, "workdir": str(workdir), "python": sys.version.split()[0], **measured}
    output = args.output or RESULTS / f"{name}.json"
    output.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(table(report))
    print(f"report: {output}")


if __name__ == "__main__":
    main()
