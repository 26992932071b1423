"""Benchmark: MD5 of a 2 GiB resource, ``RESOURCE_FACTS=full`` crawl against ``md5sum``.

Starts the loopback resource server (tests/resource_server), which generates the file
on the fly (nothing on disk), and writes the same bytes to a file in a temporary
directory for ``md5sum`` (deleted at the end). Then, ``--rounds`` times, one after the
other:

1. ``md5sum FILE`` (the file is in the page cache: it was just written);
2. a crawl: ``scrapy runspider tests/spiders_for_tests/datasets_from_file.py`` with the
   resource facts pipeline in ``full`` mode and one dataset whose one resource is the
   2 GiB file, with the project's settings (the resource download handler streams the
   body into MD5, hashed in worker threads: variant ``thread``, the one judged);
3. the same crawl with ``RESOURCE_HASH_IN_THREAD=False`` (variant ``inline``: MD5 on
   the event loop), for comparison (``--variants thread`` skips it).

Reported per round and as medians: md5sum's throughput (size / wall time); the crawl's
throughput over the body (size / ``resource_download/body_seconds``, from the status
line to the last byte, hashing included) and over the whole crawl process (start-up
included, for honesty); their ratio to md5sum (target >= 0.70, on body time); bytes
per CPU second of each (md5sum's user+sys; the crawl's whole-process CPU while the body
streamed, ``resource_download/body_cpu_seconds``) and their ratio, which a busy machine
disturbs much less than wall time; the
crawl's peak RSS (``ru_maxrss``, target <= 200 MB); the event loop's lag while it
hashed (p50/p99/max of a 10 ms timer); the CPU seconds of the crawl and of the server;
and the CPU other processes used meanwhile (``other_cores``: a figure is only worth
quoting when that is near 0). Every MD5 is checked against md5sum's.

Run from the project root: ``.venv/bin/python -m bench.resource_md5.run [--size-mib 2048]
[--rounds 3] [--tmp DIR] [--variants thread,inline] [-s KEY=VALUE]``. Results go to stdout and to
``bench/results/resource_md5-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.resource_crawl import RESOURCE_SETTINGS, SPIDER
from tests.resource_server.client import PROJECT_ROOT, RunningResourceServer
from tests.resource_server.content import Content

SEED = 2026
#: Crawl variants: the project's defaults (MD5 in worker threads) and MD5 on the event loop.
VARIANTS: dict[str, dict[str, str]] = {
    "thread": {},
    "inline": {"RESOURCE_HASH_IN_THREAD": "False"},
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_measured(command: list[str], server_pid: int, **options: Any) -> dict[str, Any]:
    """Run a child; its wall time, CPU (rusage), peak RSS, and the CPU of the others."""
    busy_before, server_before = busy_seconds(), process_cpu(server_pid)
    started = time.perf_counter()
    child = subprocess.Popen(command, **options)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    stdout = child.stdout.read() if child.stdout else ""
    stderr = child.stderr.read() if child.stderr else ""
    cpu = usage.ru_utime + usage.ru_stime
    server_cpu = process_cpu(server_pid) - server_before
    other = max(0.0, busy_seconds() - busy_before - cpu - server_cpu)
    return {
        "returncode": child.returncode, "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
        "server_cpu_s": round(server_cpu, 2), "other_cores": round(other / wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "stdout": stdout, "stderr": stderr,
    }


def write_file(path: Path, content: Content) -> None:
    with path.open("wb") as out:
        for chunk in content.chunks():
            out.write(chunk)


def md5sum_round(path: Path, size: int, server_pid: int) -> dict[str, Any]:
    run = run_measured(["md5sum", str(path)], server_pid, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run["returncode"] == 0, run["stderr"]
    return {
        "md5": run["stdout"].split()[0], "wall_s": run["wall_s"], "mb_per_s": round(size / run["wall_s"] / 1e6, 1),
        "cpu_s": run["cpu_s"], "mb_per_cpu_s": round(size / max(run["cpu_s"], 0.01) / 1e6, 1),
        "other_cores": run["other_cores"],
    }


def crawl_round(url: str, size: int, workdir: Path, n: str, server_pid: int, settings: dict[str, str]) -> dict[str, Any]:
    datasets = workdir / "datasets.json"
    datasets.write_text(json.dumps([{"portal": "http://bench.example",
                                     "raw": {"id": "bench", "resources": [{"id": "big", "url": url}]}}]))
    feed = workdir / f"crawl-{n}.jsonl"
    stats_file = workdir / f"crawl-{n}-stats.json"
    all_settings = {
        **RESOURCE_SETTINGS, "RESOURCE_FACTS": "full", "RESOURCE_MAX_BYTES": str(size + 1),
        "RESOURCE_TIMEOUT": "30", "MEASUREMENTS_FILE": str(stats_file), "LOG_LEVEL": "INFO", **settings,
    }
    command = [sys.executable, "-m", "scrapy", "runspider", str(SPIDER), "-a", f"datasets={datasets}", "-O", str(feed)]
    for key, value in all_settings.items():
        command += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    run = run_measured(command, server_pid, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    (workdir / f"crawl-{n}.log").write_text(run["stderr"] + run["stdout"])
    assert run["returncode"] == 0, run["stderr"][-3000:]
    [item] = [json.loads(line) for line in feed.read_text().splitlines() if line.strip()]
    [fact] = item["resource_facts"]
    stats = json.loads(stats_file.read_text())
    body_s = stats["resource_download/body_seconds"]
    body_cpu = stats["resource_download/body_cpu_seconds"]
    return {
        "md5": fact["md5"], "size": fact["size"], "error": fact["error"], "md5_skipped": fact["md5_skipped"],
        "body_s": round(body_s, 3), "mb_per_s": round(size / body_s / 1e6, 1),
        "body_cpu_s": round(body_cpu, 3), "mb_per_cpu_s": round(size / body_cpu / 1e6, 1),
        "wall_s": run["wall_s"], "mb_per_s_whole_process": round(size / run["wall_s"] / 1e6, 1),
        "peak_rss_mb": run["peak_rss_mb"], "peak_rss_mb_self_reported": stats["measure/peak_rss_mb"],
        "loop_lag_ms": {k: stats[f"measure/loop_lag_ms_{k}"] for k in ("p50", "p99", "max")},
        "cpu_s": run["cpu_s"], "server_cpu_s": run["server_cpu_s"], "other_cores": run["other_cores"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resource_md5.run")
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="where the file for md5sum is written (default: the system's)")
    parser.add_argument("-s", dest="settings", action="append", default=[], help="KEY=VALUE Scrapy setting")
    parser.add_argument("--variants", default="thread,inline",
                        help="crawl variants, the first is judged: thread (default settings), inline")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown or not variants:
        parser.error(f"--variants: choose among {', '.join(VARIANTS)}")
    size = args.size_mib * 1024 * 1024
    settings = dict(item.split("=", 1) for item in args.settings)
    content = Content(size, seed=SEED)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    results_dir = PROJECT_ROOT / "bench" / "results"
    workdir = results_dir / f"resource_md5-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="resource-md5-", dir=args.tmp))
    rounds: list[dict[str, Any]] = []
    try:
        path = tmp / "resource.bin"
        print(f"writing {size} bytes to {path} for md5sum ...", flush=True)
        write_file(path, content)
        with RunningResourceServer() as server:
            assert server.process is not None
            url = server.url("/resource.bin", size=size, seed=SEED)
            for n in range(1, args.rounds + 1):
                tool = md5sum_round(path, size, server.process.pid)
                entry: dict[str, Any] = {"round": n, "md5sum": tool}
                print(f"round {n}: md5sum {tool['mb_per_s']} MB/s (other processes {tool['other_cores']} cores)",
                      flush=True)
                for variant in variants:
                    crawl = crawl_round(url, size, workdir, f"{n}-{variant}", server.process.pid,
                                        {**settings, **VARIANTS[variant]})
                    ratio = round(crawl["mb_per_s"] / tool["mb_per_s"], 3)
                    cpu_ratio = round(crawl["mb_per_cpu_s"] / tool["mb_per_cpu_s"], 3)
                    entry[variant] = {**crawl, "ratio": ratio, "cpu_ratio": cpu_ratio}
                    print(f"  crawl, MD5 {variant}: {crawl['mb_per_s']} MB/s over the body "
                          f"({crawl['mb_per_s_whole_process']} MB/s whole process), ratio {ratio}, "
                          f"CPU {crawl['mb_per_cpu_s']} MB per CPU second (md5sum {tool['mb_per_cpu_s']}), "
                          f"peak RSS {crawl['peak_rss_mb']} MB, loop lag p99 {crawl['loop_lag_ms']['p99']} ms, "
                          f"other processes {crawl['other_cores']} cores", flush=True)
                rounds.append(entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    reference = rounds[0]["md5sum"]["md5"]
    md5_agree = all(r["md5sum"]["md5"] == reference and all(r[v]["md5"] == reference for v in variants)
                    for r in rounds)
    median = lambda values: round(statistics.median(values), 3)  # noqa: E731
    summary: dict[str, Any] = {
        "size_bytes": size,
        "rounds": len(rounds),
        "md5": reference,
        "md5_agree": md5_agree,
        "md5sum_mb_per_s": median([r["md5sum"]["mb_per_s"] for r in rounds]),
        "md5sum_other_cores_max": max(r["md5sum"]["other_cores"] for r in rounds),
        "targets": {"ratio": 0.70, "peak_rss_mb": 200},
    }
    for variant in variants:
        crawls = [r[variant] for r in rounds]
        summary[variant] = {
            "settings": VARIANTS[variant],
            "mb_per_s": median([c["mb_per_s"] for c in crawls]),
            "mb_per_s_whole_process": median([c["mb_per_s_whole_process"] for c in crawls]),
            "ratio": median([c["ratio"] for c in crawls]),
            "best_ratio": max(c["ratio"] for c in crawls),
            "cpu_ratio": median([c["cpu_ratio"] for c in crawls]),
            "peak_rss_mb": max(c["peak_rss_mb"] for c in crawls),
            "cpu_s": median([c["cpu_s"] for c in crawls]),
            "loop_lag_ms_p99": median([c["loop_lag_ms"]["p99"] for c in crawls]),
            "loop_lag_ms_max": max(c["loop_lag_ms"]["max"] for c in crawls),
            "other_cores_max": max(c["other_cores"] for c in crawls),
        }
    first = summary[variants[0]]
    summary["met"] = md5_agree and first["ratio"] >= 0.70 and first["peak_rss_mb"] <= 200
    report = {"benchmark": "resource_md5", "started": stamp, "machine": {"cpus": os.cpu_count()},
              "settings": settings, "summary": summary, "rounds": rounds}
    out = results_dir / f"resource_md5-{stamp}.json"
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"written: {out}")
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
