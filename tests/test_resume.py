"""A crawl killed with ``kill -9`` and resumed stores exactly what an uninterrupted run
of the same world stores: every entity once, the same values, the same run timestamp.

The crawls are real ``scrapy crawl`` processes with a JOBDIR (as ``./scripts/crawl
--resume`` runs them), writing to a real MongoDB-wire server; the world's portals
answer slowly enough, and the crawl is narrow enough, that a kill lands during
discovery, mid-probing and between the batches of the MongoDB writer.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.crawl import kill_at_each, run_crawl, start_crawl, wait_until
from tests.fixtures.disk import fill
from tests.world import spec

SITES = 24
#: Fields that say when or how fast, not what was measured.
VOLATILE = {"_id", "run_timestamp"}


@pytest.fixture(scope="module")
def slow_world(tmp_path_factory):
    from tests.world.launcher import start_world

    pool = spec.AddressPool("127.14.0.1")
    portals = [spec.ckan_portal(pool, latency_ms=120, num_datasets=10 + i, num_organizations=2 + i % 5,
                                name=f"slow{i:02d}") for i in range(SITES)]
    world = start_world(portals, tmp_path_factory.mktemp("resume-world"))
    try:
        yield world
    finally:
        world.stop()


def crawl_settings(world: Any, database: str, tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **world.scrapy_settings(),
        "MONGODB_DATABASE": database,
        "MONGODB_SPILL_DIR": str(tmp / "spill"),
        # Narrow and slow, so that a kill lands in the middle of the work.
        "CONCURRENT_REQUESTS": "3",
        "AUTOTHROTTLE_ENABLED": "False",
        "MONGODB_BATCH_SIZE": "4",
        "MONGODB_FLUSH_INTERVAL": "0.5",
        **extra,
    }


def comparable(docs: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {doc[key]: {k: v for k, v in doc.items() if k not in VOLATILE} for doc in docs}


@pytest.fixture(scope="module")
def uninterrupted(slow_world, mongodb_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    database = f"resume_ref_{uuid.uuid4().hex[:8]}"
    urls = slow_world.write_urls_file(tmp / "urls.txt")
    started = time.monotonic()
    result = run_crawl("sites", tmp, args={"urls": str(urls)}, settings=crawl_settings(slow_world, database, tmp),
                       env={"MONGODB_URI": mongodb_server.uri}, feed=False)
    assert result.returncode == 0, result.log[-3000:]
    return mongodb_server.documents(database, "sites"), time.monotonic() - started


def test_sites_killed_three_times_store_what_one_run_stores(slow_world, mongodb_server, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    database = f"resume_{uuid.uuid4().hex[:8]}"
    urls = slow_world.write_urls_file(tmp_path / "urls.txt")
    settings = crawl_settings(slow_world, database, tmp_path, JOBDIR=str(tmp_path / "job"))
    env = {"MONGODB_URI": mongodb_server.uri}

    def count() -> int:
        return len(mongodb_server.documents(database, "sites"))

    slow_world.reset()
    kill_at_each(
        lambda: start_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings, env=env,
                            log_path=tmp_path / f"killed-{time.monotonic_ns()}.log"),
        [lambda: slow_world.stats().get("requests", 0) > 0,  # during discovery
         lambda: count() >= 5,  # mid-probing
         lambda: count() >= 14],  # mid-batch (MONGODB_BATCH_SIZE 4)
    )
    assert count() < SITES
    result = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings, env=env, feed=False)
    assert result.returncode == 0, result.log[-3000:]
    assert "Resuming the run of" in result.log

    docs = mongodb_server.documents(database, "sites")
    assert len(docs) == len({doc["site"] for doc in docs}) == SITES  # nothing twice, nothing missing
    assert len({doc["run_timestamp"] for doc in docs}) == 1
    assert (tmp_path / "job" / "run_timestamp").read_text().strip() == docs[0]["run_timestamp"]
    assert comparable(docs, "site") == comparable(reference, "site")
    latest = mongodb_server.documents(database, "sites_latest")
    assert sorted(doc["site"] for doc in latest) == sorted(doc["site"] for doc in docs)


def test_scripts_crawl_resume_keeps_the_run_timestamp(slow_world, mongodb_server, tmp_path):
    import os
    import subprocess

    from tests.crawl import PROJECT_ROOT, TEST_ENV

    database = f"resume_script_{uuid.uuid4().hex[:8]}"
    portal = slow_world.portals[0]
    env = {**os.environ, **TEST_ENV, "MONGODB_URI": mongodb_server.uri, "CKANCRAWL_SERVICES_DIR": str(tmp_path)}

    def crawl(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "crawl"), "sites", *extra, "-a", f"url={portal.listed_url}",
             "-s", f"MONGODB_DATABASE={database}", "-s", "LOG_LEVEL=INFO", "-s", "JOB_SUMMARY_EXIT_CODE=0"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    first = crawl()
    assert first.returncode == 0, first.stderr[-3000:]
    stamp = (tmp_path / "jobs" / "sites" / "run_timestamp").read_text().strip()
    time.sleep(1.1)  # a new run would get another second
    again = crawl("--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming the sites run of {stamp}" in again.stdout
    docs = mongodb_server.documents(database, "sites")
    assert [doc["run_timestamp"] for doc in docs] == [stamp]


def test_an_unwritable_job_directory_stops_the_crawl_before_any_request(slow_world, tmp_path):
    # A path under a regular file cannot be written, even by root (chmod would not do).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    slow_world.reset()
    result = run_crawl("sites", tmp_path, args={"url": slow_world.portals[0].listed_url},
                       settings={**slow_world.scrapy_settings(), "JOBDIR": str(blocker / "job")})
    assert result.returncode != 0
    assert f"cannot write the run timestamp to the job directory {blocker / 'job'}" in result.log
    assert slow_world.stats().get("requests", 0) == 0
    assert result.items == []


def test_a_disk_filling_up_mid_crawl_stops_it_cleanly_and_the_resume_completes_it(
        slow_world, mongodb_server, uninterrupted, small_disk, tmp_path):
    reference, _ = uninterrupted
    database = f"resume_disk_{uuid.uuid4().hex[:8]}"
    urls = slow_world.write_urls_file(tmp_path / "urls.txt")
    settings = {**crawl_settings(slow_world, database, tmp_path, JOBDIR=str(small_disk / "job")),
                "MONGODB_SPILL_DIR": str(small_disk / "spill"), "DISK_MIN_FREE_MB": "4",
                "DISK_CHECK_INTERVAL": "0.1", "JOB_SUMMARY_EXIT_CODE": "3"}
    env = {"MONGODB_URI": mongodb_server.uri}

    def count() -> int:
        return len(mongodb_server.documents(database, "sites"))

    process = start_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings, env=env,
                          log_path=tmp_path / "disk-full.log")
    try:
        wait_until(lambda: count() >= 5, process)
        filler = fill(small_disk, leave_mb=2)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "disk-full.log").read_text(encoding="utf-8")
    assert process.returncode == 3, log[-3000:]  # flagged: finish reason disk_full
    assert "Stopping the crawl while every write still succeeds: only " in log
    assert f"MB are free on the disk of JOBDIR ({small_disk / 'job'})" in log
    assert "resume with ./scripts/crawl <spider> --resume" in log
    assert "'finish_reason': 'disk_full'" in log and "Traceback" not in log
    assert count() < SITES

    # Still short of space: the next start stops before its first request.
    slow_world.reset()
    refused = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings, env=env, feed=False)
    assert "Stopping the crawl before it starts" in refused.log
    assert slow_world.stats().get("requests", 0) == 0

    filler.unlink()
    resumed = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings, env=env, feed=False)
    assert resumed.returncode == 0, resumed.log[-3000:]
    docs = mongodb_server.documents(database, "sites")
    assert len(docs) == len({doc["site"] for doc in docs}) == SITES
    assert len({doc["run_timestamp"] for doc in docs}) == 1
    assert comparable(docs, "site") == comparable(reference, "site")


# -- harvest ------------------------------------------------------------------------------

HARVEST_DATASETS = 240
#: Fields of the raw repository that hold the run's timestamp, or the clock at its end.
RUN_FIELDS = VOLATILE | {"harvested_at", "first_harvested_at", "finished_at"}


@pytest.fixture(scope="module")
def harvest_world(tmp_path_factory):
    from tests.world.datasets import DatasetsSpec
    from tests.world.launcher import start_world

    pool = spec.AddressPool("127.14.1.1")
    portals = [spec.dataset_portal(pool, DatasetsSpec(count=HARVEST_DATASETS, seed=7), name="harvested",
                                   latency_ms=60)]
    world = start_world(portals, tmp_path_factory.mktemp("resume-harvest-world"))
    try:
        yield world
    finally:
        world.stop()


def harvest(world: Any, mongodb_server: Any, tmp: Path, database: str, background: bool = False, **extra: str):
    settings = {**crawl_settings(world, database, tmp, **extra), "HARVEST_PAGE_SIZE": "20", "MONGODB_BATCH_SIZE": "7"}
    args = {"portal": world.portals[0].listed_url, "since": "all"}
    env = {"MONGODB_URI": mongodb_server.uri}
    if background:
        return start_crawl("harvest", tmp, args=args, settings=settings, env=env,
                           log_path=tmp / f"harvest-{time.monotonic_ns()}.log")
    return run_crawl("harvest", tmp, args=args, settings=settings, env=env, feed=False)


def repository(mongodb_server: Any, database: str) -> dict[str, Any]:
    def strip(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in RUN_FIELDS}

    return {
        "datasets": {doc["dataset_id"]: strip(doc) for doc in mongodb_server.documents(database, "raw_datasets")},
        "history": len(mongodb_server.documents(database, "raw_datasets_history")),
        "runs": [strip(doc) for doc in mongodb_server.documents(database, "harvest_runs")],
    }


@pytest.mark.parametrize("split", ["1", "4"], ids=["whole", "split into 4 id ranges"])
def test_harvest_killed_twice_stores_what_one_run_stores(harvest_world, mongodb_server, tmp_path, split):
    """Split, the id ranges are scheduled requests kept in the job directory's queue: the
    resumed process finds some there and splits the portal again; each range counts once."""
    settings = {"HARVEST_SPLIT": split}
    reference_db = f"resume_harvest_ref_{uuid.uuid4().hex[:8]}"
    reference = harvest(harvest_world, mongodb_server, tmp_path, reference_db, **settings)
    assert reference.returncode == 0, reference.log[-3000:]

    database = f"resume_harvest_{uuid.uuid4().hex[:8]}"
    job = {"JOBDIR": str(tmp_path / "job"), **settings}

    def count() -> int:
        return len(mongodb_server.documents(database, "raw_datasets"))

    kill_at_each(lambda: harvest(harvest_world, mongodb_server, tmp_path, database, background=True, **job),
                 [lambda: count() >= 25, lambda: count() >= 125])
    assert count() < HARVEST_DATASETS
    resumed = harvest(harvest_world, mongodb_server, tmp_path, database, **job)
    assert resumed.returncode == 0, resumed.log[-3000:]
    assert "Traceback" not in resumed.log

    docs = mongodb_server.documents(database, "raw_datasets")
    assert len(docs) == len({doc["dataset_id"] for doc in docs}) == HARVEST_DATASETS
    stamp = (tmp_path / "job" / "run_timestamp").read_text().strip()
    assert {doc["harvested_at"] for doc in docs} == {doc["first_harvested_at"] for doc in docs} == {stamp}
    assert [run["run_timestamp"] for run in mongodb_server.documents(database, "harvest_runs")] == [stamp]
    got, want = repository(mongodb_server, database), repository(mongodb_server, reference_db)
    assert [(run["complete"], run["split"], run["datasets"]) for run in got["runs"]] == [
        (True, int(split), HARVEST_DATASETS)]
    run_diff = {k: (v, want["runs"][0].get(k)) for k, v in got["runs"][0].items() if want["runs"][0].get(k) != v}
    assert run_diff == {}
    assert got == want


# -- extensions ---------------------------------------------------------------------------

EXTENSION_REPOS = [
    {"id": 5000 + i, "owner": "ckan", "name": f"ckanext-resume{i:03d}", "contributors": 1 + i % 7, "stars": i,
     "pushed_at": "2024-05-01T10:00:00Z"}
    for i in range(90)
]
#: Fields that depend on what an earlier, killed run left in the ETag store.
EXTENSION_RUN_FIELDS = VOLATILE | {"not_modified"}


def extensions(standin: Any, mongodb_server: Any, tmp: Path, database: str, background: bool = False,
               **extra: str):
    from tests.fixtures.github import FAKE_TOKEN, FAST_SETTINGS

    listing = tmp / "repos.txt"
    listing.write_text("".join(f"{r['owner']}/{r['name']}\n" for r in EXTENSION_REPOS), encoding="utf-8")
    settings = {
        **FAST_SETTINGS, "LOG_LEVEL": "INFO",
        "GITHUB_API_URL": standin.url, "GITHUB_GRAPHQL_URL": standin.graphql_url,
        "GITHUB_CACHE_DIR": str(tmp / f"github-cache-{database}"),
        # Small batches, few requests at once: the kills land between and inside batches.
        "GITHUB_BATCH_SIZE": "15", "GITHUB_CONCURRENT_REQUESTS": "2",
        "MONGODB_DATABASE": database, "MONGODB_SPILL_DIR": str(tmp / "spill"),
        "MONGODB_BATCH_SIZE": "4", "MONGODB_FLUSH_INTERVAL": "0.5",
        **extra,
    }
    args = {"repos": str(listing)}
    env = {"MONGODB_URI": mongodb_server.uri, "GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_TOKENS": ""}
    if background:
        return start_crawl("extensions", tmp, args=args, settings=settings, env=env,
                           log_path=tmp / f"extensions-{time.monotonic_ns()}.log")
    return run_crawl("extensions", tmp, args=args, settings=settings, env=env, feed=False)


def test_extensions_killed_three_times_store_what_one_run_stores(github_standin, mongodb_server, tmp_path):
    standin = github_standin(EXTENSION_REPOS, latency=0.08)
    reference_db = f"resume_ext_ref_{uuid.uuid4().hex[:8]}"
    reference = extensions(standin, mongodb_server, tmp_path, reference_db)
    assert reference.returncode == 0, reference.log[-3000:]

    database = f"resume_ext_{uuid.uuid4().hex[:8]}"
    job = {"JOBDIR": str(tmp_path / "job")}

    def count() -> int:
        return len(mongodb_server.documents(database, "extensions"))

    standin.clear_log()
    kill_at_each(
        lambda: extensions(standin, mongodb_server, tmp_path, database, background=True, **job),
        [lambda: any("graphql" in entry["path"] for entry in standin.log()),  # the first batch
         lambda: count() >= 20,  # mid-batch writes
         lambda: count() >= 60],  # late
    )
    assert count() < len(EXTENSION_REPOS)
    resumed = extensions(standin, mongodb_server, tmp_path, database, **job)
    assert resumed.returncode == 0, resumed.log[-3000:]
    assert "Resuming the run of" in resumed.log

    docs = mongodb_server.documents(database, "extensions")
    assert len(docs) == len({doc["extension"] for doc in docs}) == len(EXTENSION_REPOS)
    stamp = (tmp_path / "job" / "run_timestamp").read_text().strip()
    assert {doc["run_timestamp"] for doc in docs} == {stamp}

    def values(db: str) -> dict[str, dict[str, Any]]:
        return {doc["extension"]: {k: v for k, v in doc.items() if k not in EXTENSION_RUN_FIELDS}
                for doc in mongodb_server.documents(db, "extensions")}

    assert values(database) == values(reference_db)
    latest = mongodb_server.documents(database, "extensions_latest")
    assert sorted(doc["extension"] for doc in latest) == sorted(doc["extension"] for doc in docs)
