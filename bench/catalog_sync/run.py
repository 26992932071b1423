"""Benchmark: syncing 1,000 site datasets of which 10 % changed, against the original
one-call-per-dataset update, same run, same catalog.

Starts the project's CKAN 2.11 test catalog (tests/services: PostgreSQL, Redis, the Solr
stand-in, CKAN under gunicorn with 2 workers; it waits if a test session holds it),
creates ``--datasets`` ``site`` datasets with known values, and builds one measured
snapshot per dataset, of which every ``1/--changed-share``-th differs from the catalog
in one to five fields. Then, one after the other, each starting from the same catalog
(the changed datasets are put back between runs, not counted):

1. ``ckancrawl``: the snapshots go through
   :class:`ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline` (its ``process_item``
   called for every item at once, as items arrive from a crawl faster than the catalog
   takes them) with its default settings: reads batched 50 to a package_search, 4
   threads, at most 2 writes at once; patch only what changed; verify;
2. ``original``: one ``package_patch`` per dataset with every measured field
   (bench/catalog_sync/original.py), one thread, as a plain loop runs it;
3. ``original-4-threads``: the same from 4 threads;
4. ``ckancrawl-again``: 1. once more (so that neither side alone runs right after the
   seeding); ratios use the mean of 1. and 4.;
5. ``ckancrawl-rerun``: ckancrawl again on the up-to-date catalog (the next week's run
   when nothing changed).

Reported per run: wall time, write calls (counted by the client, and independently as
Solr index updates seen by the stand-in: one per package_patch), read calls
(package_search batches and package_show), and whether every dataset holds the
measured values afterwards, CPU seconds of this process and of the catalog's processes,
and the cores other processes kept busy meanwhile (figures are only worth quoting when
that is near 0). Ratios: original writes /
ckancrawl writes, original wall time / ckancrawl wall time.

Run from the project root: ``.venv/bin/python -m bench.catalog_sync.run [--datasets
1000] [--changed-share 0.1]``. Figures go to stdout and to
``bench/results/catalog_sync-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy.utils.test import get_crawler

from bench.catalog_sync.original import update_all
from ckancrawl.catalog.fields import SITE_FIELDS, known_values
from ckancrawl.items import SiteSnapshot
from ckancrawl.pipelines.catalog_sync import CatalogSyncPipeline
from bench.sites.measure import machine_busy_s, tree_cpu_s
from tests.ckan.catalog import Catalog
from tests.services import CatalogStack

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS = PROJECT_ROOT / "bench" / "results"
PLUGINS = ["activity", "datastore", "datatables_view", "image_view", "text_view"]


def baseline(index: int) -> dict[str, Any]:
    """What the catalog holds for dataset ``index`` before the runs (scheming stores text)."""
    return {"num_datasets": 100 + index, "num_organizations": 5 + index % 7, "num_groups": index % 11,
            "ckan_version": ["2.9.11", "2.10.4", "2.11.3"][index % 3], "extensions": PLUGINS[: 2 + index % 4]}


def measured(index: int, changed: bool) -> dict[str, Any]:
    values = baseline(index)
    if changed:  # one to five fields moved since last week
        fields = 1 + index % 5
        values["num_datasets"] += 7
        if fields > 1:
            values["num_groups"] += 1
        if fields > 2:
            values["ckan_version"] = "2.11.4"
        if fields > 3:
            values["extensions"] = values["extensions"] + ["xloader"]
        if fields > 4:
            values["num_organizations"] += 2
    else:  # same meaning, other form: scheming's order and text are not changes
        values["extensions"] = list(reversed(values["extensions"]))
    return values


def snapshot(name: str, dataset_id: str, values: dict[str, Any]) -> SiteSnapshot:
    return SiteSnapshot(site=name, run_timestamp="2026-11-22T03:00:00Z", source="catalog", catalog_dataset=name,
                        catalog_dataset_id=dataset_id, status="ok", **values)


def stack_pids(stack: CatalogStack) -> list[int]:
    """The catalog's processes: gunicorn (with its workers), the Solr stand-in, PostgreSQL, Redis."""
    pids = [p.pid for p in (stack.ckan._process, stack.solr._process) if p is not None]
    for pid_file in (stack.layout.pg_data / "postmaster.pid", stack.layout.run_dir / "redis.pid"):
        try:
            pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def measured_run(stack: CatalogStack, run: Any) -> dict[str, Any]:
    """Run ``run()``; add wall-clock-independent CPU figures: this process, the catalog's
    processes, and everything else on the machine meanwhile (a busy machine skews times)."""
    pids = stack_pids(stack)
    busy, own, catalog_cpu = machine_busy_s(), tree_cpu_s(os.getpid()), sum(tree_cpu_s(p) for p in pids)
    result = run()
    busy = machine_busy_s() - busy
    own = tree_cpu_s(os.getpid()) - own
    catalog_cpu = sum(tree_cpu_s(p) for p in pids) - catalog_cpu
    other = max(0.0, busy - own - catalog_cpu)
    result.update({"cpu_s_benchmark_process": round(own, 1), "cpu_s_catalog": round(catalog_cpu, 1),
                   "other_processes_cores_avg": round(other / result["seconds"], 2) if result["seconds"] else None})
    return result


def solr_updates(stack: CatalogStack) -> int:
    return int(stack.solr.stats()["requests"].get("update", 0))


def all_hold(catalog: Catalog, expected: dict[str, dict[str, Any]]) -> bool:
    found = catalog.search(fq="+dataset_type:site", rows=1000)["results"]
    if len(found) < len(expected):
        found = [catalog.action("package_show", id=name) for name in expected]
    by_name = {d["name"]: d for d in found}
    return all(all(SITE_FIELDS[f].same(by_name[name].get(f), v) for f, v in values.items())
               for name, values in expected.items())


def restore(catalog: Catalog, names: list[str], indexes: dict[str, int]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: catalog.action("package_patch", id=n, **baseline(indexes[n])), names))


def run_ckancrawl(stack: CatalogStack, catalog: Catalog, items: list[SiteSnapshot]) -> dict:
    crawler = get_crawler(settings_dict={"CATALOG_URL": catalog.url, "CATALOG_SYNC_ENABLED": True,
                                         "LOG_LEVEL": "WARNING"})
    os.environ["CKAN_API_KEY"] = catalog.api_key
    pipeline = CatalogSyncPipeline.from_crawler(crawler)

    async def feed() -> None:
        await pipeline.open_spider()
        await asyncio.gather(*(pipeline.process_item(item) for item in items))
        await pipeline.close_spider()

    updates_before = solr_updates(stack)
    started = time.monotonic()
    asyncio.run(feed())
    seconds = time.monotonic() - started
    stats = crawler.stats.get_stats()
    outcomes = {k.split("/", 1)[1]: v for k, v in stats.items()
                if k in ("catalog_sync/updated", "catalog_sync/unchanged", "catalog_sync/failed")}
    return {"seconds": round(seconds, 2), "writes": stats.get("catalog_sync/writes", 0),
            "reads": sum(stats.get(f"catalog_sync/calls/{a}", 0) for a in ("package_search", "package_show")),
            "read_calls": {a: stats.get(f"catalog_sync/calls/{a}", 0) for a in ("package_search", "package_show")},
            "solr_index_updates": solr_updates(stack) - updates_before, "outcomes": outcomes}


def run_original(stack: CatalogStack, catalog: Catalog, measured_values: dict[str, dict[str, Any]],
                 threads: int) -> dict:
    values = {name: {f: SITE_FIELDS[f].to_catalog(v) for f, v in known.items()}
              for name, known in measured_values.items()}
    updates_before = solr_updates(stack)
    started = time.monotonic()
    calls = update_all(catalog.url, catalog.api_key, values, threads=threads)
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 2), "writes": calls, "reads": 0,
            "solr_index_updates": solr_updates(stack) - updates_before, "threads": threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_sync.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--changed-share", type=float, default=0.1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    stack = CatalogStack()
    print("Starting the CKAN test catalog...", flush=True)
    stack.start()
    try:
        record = stack.record
        catalog = Catalog(stack.ckan.url, record["token"], record["org"], record["org_id"], record["admin"])
        names = [f"bench-site-{i:05d}" for i in range(args.datasets)]
        indexes = {name: i for i, name in enumerate(names)}
        started = time.monotonic()
        catalog.seed_site_datasets([{"name": n, "title": n, **baseline(i)} for n, i in indexes.items()])
        print(f"Seeded {args.datasets} site datasets in {time.monotonic() - started:.1f} s", flush=True)
        every = max(1, round(1 / args.changed_share)) if args.changed_share > 0 else args.datasets + 1
        changed = [n for n, i in indexes.items() if i % every == 0]
        ids = {d["name"]: d["id"] for d in catalog.search(fq="+dataset_type:site", rows=1000, fl="id,name")["results"]}
        catalog_values = {n: measured(i, i % every == 0) for n, i in indexes.items()}
        items = [snapshot(n, ids.get(n) or n, catalog_values[n]) for n in names]
        values = {n: known_values(ItemAdapter(item), SITE_FIELDS) for n, item in zip(names, items)}

        time.sleep(5)  # let the catalog settle after seeding
        runs: dict[str, Any] = {}
        # ckancrawl runs before and after the originals, so that neither side alone meets
        # whatever state the catalog is in right after seeding.
        for label, run in (
            ("ckancrawl", lambda: run_ckancrawl(stack, catalog, items)),
            ("original", lambda: run_original(stack, catalog, values, threads=1)),
            ("original-4-threads", lambda: run_original(stack, catalog, values, threads=4)),
            ("ckancrawl-again", lambda: run_ckancrawl(stack, catalog, items)),
            ("ckancrawl-rerun", lambda: run_ckancrawl(stack, catalog, items)),
        ):
            if label != "ckancrawl-rerun":
                restore(catalog, changed, indexes)
            result = measured_run(stack, run)
            result["all_values_right"] = all_hold(catalog, catalog_values)
            runs[label] = result
            print(f"{label:20s} {result['seconds']:7.2f} s  writes {result['writes']:5d}  reads {result['reads']:5d}  "
                  f"solr index updates {result['solr_index_updates']:5d}  values right: {result['all_values_right']}  "
                  f"other processes (cores): {result['other_processes_cores_avg']}", flush=True)
    finally:
        stack.stop()

    original, threaded = runs["original"], runs["original-4-threads"]
    ours = {"seconds": (runs["ckancrawl"]["seconds"] + runs["ckancrawl-again"]["seconds"]) / 2,
            "writes": runs["ckancrawl"]["writes"]}
    report = {
        "benchmark": "catalog_sync",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "datasets": args.datasets,
        "changed": len(changed),
        "machine": {"cpus": os.cpu_count()},
        "runs": runs,
        "ratios": {
            "writes_original_per_ckancrawl": round(original["writes"] / max(1, ours["writes"]), 2),
            "wall_time_original_per_ckancrawl": round(original["seconds"] / ours["seconds"], 2),
            "wall_time_original_4_threads_per_ckancrawl": round(threaded["seconds"] / ours["seconds"], 2),
        },
        "ratios_use": "the mean wall time of the two ckancrawl runs",
        "targets": {"one_patch_per_changed_dataset":
                    ours["writes"] == len(changed) == runs["ckancrawl-again"]["writes"],
                    "no_write_when_nothing_changed": runs["ckancrawl-rerun"]["writes"] == 0},
    }
    print(json.dumps(report["ratios"], indent=1))
    print(json.dumps(report["targets"], indent=1))
    output = args.output or RESULTS / f"catalog_sync-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"Report: {output}")
    return 0 if all(report["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
