"""Fault figures: kill -9 and resume against an uninterrupted run, plus the count of
fault kinds and bad inputs the test suite tries.

    .venv/bin/python -m bench.faults.run [--sites 60] [--datasets 600] [--repos 200] [--latency-ms 100]

One simulated world (tests/world) and one MongoDB-wire server (SecantusDB) are started
on loopback, and the GitHub stand-in (tests/github_standin) for ``extensions``. For
each spider: one uninterrupted run (timed), then the
same run killed with SIGKILL at three points (after the first request, after a third
and after two thirds of the documents are in MongoDB) and resumed with the same JOBDIR
until it finishes (timed from the first start, kills included). The two databases are
then compared entity by entity: expected (the uninterrupted run's documents), written,
lost (expected but missing or different), duplicated (an entity stored twice or under
another run timestamp). The catalogue of fault kinds and bad inputs is FAULTS below,
each with the test that tries it. The report goes to bench/results/faults-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tests.crawl import run_crawl, start_crawl
from tests.fixtures.github import FAKE_TOKEN
from tests.github_standin.client import GitHubStandIn
from tests.fixtures.mongo import MongoServer
from tests.world import spec
from tests.world.datasets import DatasetsSpec
from tests.world.launcher import start_world

ROOT = Path(__file__).resolve().parents[2]

#: Component faults: what breaks, and the test that breaks it.
FAULT_KINDS = {
    "kill -9 of sites (discovery, mid-probing, mid-batch) and resume": "tests/test_resume.py",
    "kill -9 of harvest (twice mid-portal) and resume": "tests/test_resume.py",
    "kill -9 of extensions (first batch, mid-writes, late) and resume": "tests/test_resume.py",
    "kill -9 of sites writing to the catalog and datastore (twice) and resume": "tests/test_resume_catalog.py",
    "unwritable job directory": "tests/test_resume.py",
    "disk filling up mid-crawl (real 16 MB tmpfs), then resume": "tests/test_resume.py",
    "harvest cancelled on scrapyd mid-portal": "tests/test_scrapyd_harvest.py",
    "unwritable MongoDB spill directory": "tests/test_mongodb_pipeline.py",
    "MongoDB killed and restarted mid-crawl": "tests/test_mongodb_pipeline.py",
    "MongoDB down while the spill directory's disk is full": "tests/test_mongodb_pipeline.py",
    "catalog CKAN stopped mid-sync": "tests/test_datastore_series_outage.py",
    "Redis/distributed worker interrupted and resumed": "tests/test_distributed.py",
    "GitHub rate limits, secondary limits, 202s": "tests/test_extensions_crawl.py",
}
#: Bad inputs: what a portal sends, and where it is tried.
BAD_INPUTS = {
    "HTML where JSON was expected": "tests/test_failures.py, world presets",
    "empty body": "tests/test_failures.py",
    "truncated JSON": "tests/test_failures.py",
    "malformed JSON": "tests/test_failures.py",
    "list instead of dict": "tests/test_failures.py",
    "success without result": "tests/test_failures.py",
    "numbers as strings": "tests/test_sites_crawl.py (world presets)",
    "answer past DOWNLOAD_MAXSIZE": "tests/test_failures.py",
    "redirect loop": "tests/test_failures.py, world presets",
    "slow answers past the timeout": "tests/test_sites_crawl.py (world presets)",
    "keys with . $ NUL and empty": "tests/test_harvest_world.py, tests/test_mongo_keys.py",
    "dataset over 16 MB": "tests/test_harvest_repository.py",
    "URLs that are not URLs": "tests/test_site_urls.py, tests/test_sites_crawl.py",
    "MongoDB operators and _id in portal data": "tests/test_security.py",
    "URLs to loopback, private and metadata addresses, redirects to them": "tests/test_address_guard.py",
    "a name rebound to an internal address after the check (DNS rebinding)": "tests/test_address_guard.py",
    "secrets in the environment": "tests/test_security.py",
}


def compare(reference: list[dict[str, Any]], resumed: list[dict[str, Any]], key: str,
            ignore: set[str]) -> dict[str, int]:
    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in ignore}

    want = {doc[key]: strip(doc) for doc in reference}
    got: dict[Any, dict[str, Any]] = {}
    duplicated = 0
    for doc in resumed:
        if doc[key] in got:
            duplicated += 1
        got[doc[key]] = strip(doc)
    stamps = {doc.get("run_timestamp") or doc.get("harvested_at") for doc in resumed}
    duplicated += len(stamps) - 1  # documents under a second run timestamp
    lost = sum(1 for k, doc in want.items() if got.get(k) != doc)
    return {"expected": len(want), "written": len(got), "lost": lost, "duplicated": duplicated}


def killed_and_resumed(spider: str, args: dict[str, str], settings: dict[str, str], env: dict[str, str],
                       tmp: Path, server: MongoServer, database: str, collection: str, total: int,
                       started_work: Callable[[], bool]) -> tuple[float, int]:
    settings = {**settings, "MONGODB_DATABASE": database, "JOBDIR": str(tmp / f"job-{spider}")}
    points = [started_work,
              lambda: len(server.documents(database, collection)) >= total // 3,
              lambda: len(server.documents(database, collection)) >= 2 * total // 3]
    started = time.monotonic()
    kills = 0
    for reached in points:
        process = start_crawl(spider, tmp, args=args, settings=settings, env=env,
                              log_path=tmp / f"{spider}-killed-{kills}.log")
        while not reached() and process.poll() is None:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    result = run_crawl(spider, tmp, args=args, settings=settings, env=env, feed=False, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"the resumed {spider} run failed:\n{result.log[-3000:]}")
    return time.monotonic() - started, kills


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=60)
    parser.add_argument("--datasets", type=int, default=600)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--output")
    options = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="ckancrawl-faults-"))
    pool = spec.AddressPool("127.15.0.1")
    portals = [spec.ckan_portal(pool, latency_ms=options.latency_ms, num_datasets=10 + i, name=f"site{i:03d}")
               for i in range(options.sites)]
    portals.append(spec.dataset_portal(pool, DatasetsSpec(count=options.datasets, seed=5), name="harvested",
                                       latency_ms=options.latency_ms // 2))
    world = start_world(portals, tmp / "world")
    server = MongoServer(tmp / "mongodb")
    server.start()
    github = GitHubStandIn(repos=[
        {"id": 9000 + i, "owner": "ckan", "name": f"ckanext-faults{i:04d}", "contributors": 1 + i % 9, "stars": i,
         "pushed_at": "2024-05-01T10:00:00Z"} for i in range(options.repos)
    ], tokens=(FAKE_TOKEN,), latency=options.latency_ms / 1000).start()
    report: dict[str, Any] = {"fault_kinds": FAULT_KINDS, "bad_inputs": BAD_INPUTS, "runs": {}}
    try:
        urls = world.write_urls_file(tmp / "urls.txt", [p for p in world.portals if p.name.startswith("site")])
        repos = tmp / "repos.txt"
        repos.write_text("".join(f"ckan/ckanext-faults{i:04d}\n" for i in range(options.repos)), encoding="utf-8")
        env = {"MONGODB_URI": server.uri, "GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_TOKENS": ""}
        base = {**world.scrapy_settings(), "CONCURRENT_REQUESTS": "8", "AUTOTHROTTLE_ENABLED": "False",
                "MONGODB_BATCH_SIZE": "10", "MONGODB_FLUSH_INTERVAL": "0.5", "HARVEST_PAGE_SIZE": "50",
                "MONGODB_SPILL_DIR": str(tmp / "spill"), "GITHUB_API_URL": github.url,
                "GITHUB_GRAPHQL_URL": github.graphql_url, "GITHUB_BATCH_SIZE": "25"}

        def world_started() -> bool:
            return world.stats().get("requests", 0) > 0

        def github_started() -> bool:
            return bool(github.log())
        cases = {
            "sites": ({"urls": str(urls)}, "sites", "site", {"_id", "run_timestamp"}, options.sites,
                      world_started),
            "harvest": ({"portal": world.portal("harvested").listed_url, "since": "all"}, "raw_datasets",
                        "dataset_id", {"_id", "harvested_at", "first_harvested_at"}, options.datasets,
                        world_started),
            # not_modified: which counts a 304 confirmed depends on the ETags the killed
            # runs left behind, not on what was measured.
            "extensions": ({"repos": str(repos)}, "extensions", "extension",
                           {"_id", "run_timestamp", "not_modified"}, options.repos, github_started),
        }
        for spider, (args, collection, key, ignore, total, started_work) in cases.items():
            base["GITHUB_CACHE_DIR"] = str(tmp / f"github-cache-{uuid.uuid4().hex[:8]}")
            reference_db = f"faults_ref_{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            reference = run_crawl(spider, tmp, args=args, settings={**base, "MONGODB_DATABASE": reference_db},
                                  env=env, feed=False, timeout=1800)
            uninterrupted = time.monotonic() - started
            if reference.returncode != 0:
                raise SystemExit(f"the uninterrupted {spider} run failed:\n{reference.log[-3000:]}")
            database = f"faults_{uuid.uuid4().hex[:8]}"
            world.reset()
            github.clear_log()
            base["GITHUB_CACHE_DIR"] = str(tmp / f"github-cache-{uuid.uuid4().hex[:8]}")
            resumed_seconds, kills = killed_and_resumed(spider, args, base, env, tmp, server, database,
                                                        collection, total, started_work)
            figures = compare(server.documents(reference_db, collection), server.documents(database, collection),
                              key, ignore)
            report["runs"][spider] = {**figures, "kills": kills, "uninterrupted_seconds": round(uninterrupted, 1),
                                      "killed_and_resumed_seconds": round(resumed_seconds, 1),
                                      "ratio": round(resumed_seconds / uninterrupted, 2)}
    finally:
        world.stop()
        server.stop()
        github.stop()

    print(f"fault kinds tried: {len(FAULT_KINDS)}; bad inputs tried: {len(BAD_INPUTS)}")
    print(f"{'spider':<9} {'expected':>8} {'written':>8} {'lost':>5} {'dup':>4} {'kills':>5} "
          f"{'one run s':>9} {'killed+resumed s':>16} {'ratio':>6}")
    for spider, r in report["runs"].items():
        print(f"{spider:<9} {r['expected']:>8} {r['written']:>8} {r['lost']:>5} {r['duplicated']:>4} {r['kills']:>5} "
              f"{r['uninterrupted_seconds']:>9} {r['killed_and_resumed_seconds']:>16} {r['ratio']:>6}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    output = Path(options.output) if options.output else ROOT / "bench" / "results" / f"faults-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"report: {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
