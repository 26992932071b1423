"""Benchmark: ``scrapy crawl extensions`` against the original collector, same run.

Starts the GitHub stand-in (tests/github_standin) with ``--repos`` generated
repositories and ``--latency`` seconds per answer, then, one after the other, as child
processes of this one:

1. ``scrapy crawl extensions`` with an empty ETag store (the first run of the week);
2. the same crawl again, nothing changed on GitHub (the weekly rerun);
3. the original collector (``bench.extensions.original``), one repository at a time.

Reported: API requests per repository (target <= 1.1), wall time of each tool and the
ratio (target >= 10), the rate-limit budget the unchanged rerun costs as a share of the
first run's (target <= 10 %), per resource (REST ``core`` requests, GraphQL points) and
both together, and how many recorded values are right against the stand-in's ground
truth. The stand-in's own log is the judge of requests and budget.

Run from the project root: ``.venv/bin/python -m bench.extensions.run [--repos 300]
[--latency 0.15] [--seed 1] [--skip-original]``. Results go to stdout and to
``bench/results/extensions-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.github_standin import world as world_model
from tests.github_standin.client import PROJECT_ROOT, GitHubStandIn

TOKEN = "bench-fake-token-for-the-stand-in"  # not a secret: the stand-in accepts it
JUDGED = ("stars", "forks_count", "total_releases", "latest_release", "release_date", "open_issues",
          "contributors_count")


def truth(repo: dict[str, Any]) -> dict[str, Any]:
    latest = world_model.latest_release(repo)
    return {
        "stars": repo["stars"], "forks_count": repo["forks"],
        "total_releases": len(world_model.visible_releases(repo)),
        "latest_release": latest["tag"] if latest else None,
        "release_date": latest["published_at"] if latest else None,
        "open_issues": repo["open_issues"],
        "contributors_count": repo["contributors"] + repo["anonymous_contributors"],
    }


def right(metric: str, want: Any, got: Any) -> bool:
    if metric == "release_date" and want and got:
        return str(got)[:10] == want[:10]  # the original kept the day only: judged by meaning
    if want is None:
        return got in (None, "", "No releases")
    try:
        return int(str(got)) == want if isinstance(want, int) else str(got) == str(want)
    except ValueError:
        return False


def judge(records: dict[str, dict[str, Any]], repos: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {metric: 0 for metric in JUDGED}
    for repo in repos:
        got = records.get(world_model.full_name(repo).lower(), {})
        want = truth(repo)
        for metric in JUDGED:
            counts[metric] += right(metric, want[metric], got.get(metric))
    total = sum(counts.values())
    return {"right": total, "of": len(repos) * len(JUDGED), "per_metric": counts}


def spent(log: list[dict[str, Any]]) -> dict[str, int]:
    api = [e for e in log if e["resource"] in ("core", "graphql")]
    return {
        "requests": len(api),
        "rest_requests": sum(e["resource"] == "core" for e in api),
        "graphql_requests": sum(e["resource"] == "graphql" for e in api),
        "not_modified": sum(e["status"] == 304 for e in api),
        "core_points": sum(e["points"] for e in api if e["resource"] == "core"),
        "graphql_points": sum(e["points"] for e in api if e["resource"] == "graphql"),
        "other_requests": len(log) - len(api),
    }


def crawl(standin: GitHubStandIn, repos_file: Path, work: Path, name: str) -> dict[str, Any]:
    feed = work / f"{name}.jsonl"
    command = [sys.executable, "-m", "scrapy", "crawl", "extensions", "-a", f"repos={repos_file}",
               "-O", str(feed), "-s", "ITEM_PIPELINES={}", "-s", f"GITHUB_API_URL={standin.url}",
               "-s", f"GITHUB_GRAPHQL_URL={standin.graphql_url}", "-s", f"GITHUB_CACHE_DIR={work / 'cache'}",
               "-s", f"LOG_FILE={work / name}.log", "-s", "LOG_LEVEL=INFO"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["GITHUB_TOKEN"] = TOKEN
    standin.clear_log()
    started = time.monotonic()
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    return {"seconds": round(seconds, 2), "items": items, **spent(standin.log())}


def original(standin: GitHubStandIn, urls: list[str], work: Path) -> dict[str, Any]:
    source = work / "url_list.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url"])
        writer.writerows([u] for u in urls)
    out = work / "dynamic_metadata_update.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["GITHUB_TOKEN_METADATA"] = TOKEN
    standin.clear_log()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench.extensions.original", str(source), str(out),
                           "--api", standin.url, "--graphql", standin.graphql_url],
                          cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {"seconds": round(seconds, 2), "slept": report["slept"], "rows": rows, **spent(standin.log())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extensions.run")
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-original", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "benchmark": "extensions", "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "repositories": args.repos, "latency_seconds": args.latency, "seed": args.seed,
    }
    with tempfile.TemporaryDirectory(prefix="bench-extensions-") as tmp, \
            GitHubStandIn(generate=args.repos, seed=args.seed, tokens=(TOKEN,), latency=args.latency) as standin:
        work = Path(tmp)
        repos = standin.control("GET", "world")["repos"]
        urls = [f"https://github.com/{world_model.full_name(r)}" for r in repos]
        repos_file = work / "repos.txt"
        repos_file.write_text("\n".join(urls) + "\n", encoding="utf-8")

        first = crawl(standin, repos_file, work, "first")
        second = crawl(standin, repos_file, work, "second")
        for run in (first, second):
            run["judged"] = judge({i["full_name"].lower(): i for i in run.pop("items") if i.get("full_name")}, repos)
        results["extensions_first_run"] = first
        results["extensions_second_run"] = second
        first_units = first["core_points"] + first["graphql_points"]
        second_units = second["core_points"] + second["graphql_points"]
        results["requests_per_repository"] = round(first["requests"] / args.repos, 3)
        results["second_run_requests_per_repository"] = round(second["requests"] / args.repos, 3)
        results["second_run_budget_share"] = {
            "core": round(second["core_points"] / max(1, first["core_points"]), 4),
            "graphql": round(second["graphql_points"] / max(1, first["graphql_points"]), 4),
            "both": round(second_units / max(1, first_units), 4),
            "of_hourly_budgets": round(second_units / 10000, 4),
        }
        if not args.skip_original:
            old = original(standin, urls, work)
            old["judged"] = judge({r["repository_name"].lower(): r for r in old.pop("rows")}, repos)
            results["original"] = old
            results["original_requests_per_repository"] = round(old["requests"] / args.repos, 3)
            results["wall_time_ratio"] = round(old["seconds"] / first["seconds"], 1)
            results["wall_time_ratio_without_its_pauses"] = round((old["seconds"] - old["slept"]) / first["seconds"], 1)
    targets = {
        "requests_per_repository <= 1.1": results["requests_per_repository"] <= 1.1,
        "second_run_budget_share.both <= 0.10": results["second_run_budget_share"]["both"] <= 0.10,
    }
    if "wall_time_ratio" in results:
        targets["wall_time_ratio >= 10"] = results["wall_time_ratio"] >= 10
    results["targets_met"] = targets
    out_dir = PROJECT_ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"extensions-{results['when'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(json.dumps(results, indent=1))
    print(f"written to {path.relative_to(PROJECT_ROOT)}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
