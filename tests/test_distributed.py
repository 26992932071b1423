"""Distributed mode: several ``scrapy crawl`` processes share one crawl through one Redis.

Real processes, a real redis-server and a real MongoDB-wire server; the portals are the
simulated world's. What is shared is each scheduled request (one per portal for
``harvest``, or one per id range of a large portal; one per site for ``sites``), so the
tests check that every portal, range or site was done by exactly one process, that both
processes did some, and that together they stored everything exactly once.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
from pymongo import MongoClient

from tests.crawl import run_crawl
from tests.distributed_crawl import DISTRIBUTED_ADDON, RedisServer, run_side_by_side
from tests.world import spec
from tests.world.datasets import DatasetsSpec
from tests.world.generate import make_world
from tests.world.launcher import start_world

HARVEST_PORTALS = 24
#: Datasets of portal i (about 1,500 in all: MongoDB writes set the pace of this test).
def dataset_count(i: int) -> int:
    return 30 + 3 * i


HARVEST_DATASETS = sum(dataset_count(i) for i in range(HARVEST_PORTALS))


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


def distributed(redis_server: RedisServer, run: str, **settings: str) -> dict[str, str]:
    return {"ADDONS": DISTRIBUTED_ADDON, "CKANCRAWL_REDIS_URL": redis_server.url, "CKANCRAWL_REDIS_RUN": run,
            "CKANCRAWL_REDIS_HEARTBEAT": "0.2", **settings}


# -- harvest: portals shared between two processes --------------------------------------


@pytest.fixture(scope="module")
def harvest_world(tmp_path_factory):
    pool = spec.AddressPool("127.12.0.1")
    portals = [spec.dataset_portal(pool, DatasetsSpec(count=dataset_count(i), seed=i), name=f"portal{i:02d}")
               for i in range(HARVEST_PORTALS)]
    for portal in portals:
        for host in portal.hosts:
            host.latency_ms = 30
    world = start_world(portals, tmp_path_factory.mktemp("harvest-world"))
    try:
        yield world
    finally:
        world.stop()


def harvest_side_by_side(world, redis_server, mongodb_server, tmp: Path, run: str, args: dict[str, str],
                         **settings: str) -> Iterator[tuple[list, Any, list[str]]]:
    """Two harvest processes sharing ``run`` in Redis, storing into a fresh database:
    yields their results, the database and the run's keys left in Redis."""
    database = f"distributed_{uuid.uuid4().hex[:10]}"
    all_settings = {
        **world.scrapy_settings(),
        **distributed(redis_server, run, CKANCRAWL_REDIS_LOCAL_LIMIT="2"),
        "MONGODB_DATABASE": database,
        "MONGODB_SPILL_DIR": str(tmp / "spill"),
        **settings,
    }
    results = run_side_by_side("harvest", tmp, 2, args={**args, "since": "all"}, settings=all_settings,
                               env={"MONGODB_URI": mongodb_server.uri})
    keys_left = redis_server.keys(f"ckancrawl:harvest:{run}:*")
    with MongoClient(mongodb_server.uri) as client:
        yield results, client[database], keys_left
        client.drop_database(database)


@pytest.fixture(scope="module")
def shared_harvest(harvest_world, redis_server, mongodb_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shared-harvest")
    yield from harvest_side_by_side(harvest_world, redis_server, mongodb_server, tmp, "harvest-test",
                                    {"portals": str(harvest_world.write_urls_file(tmp / "portals.txt"))},
                                    HARVEST_PAGE_SIZE="50")


def datasets_of(result) -> list[tuple[str, str]]:
    return [(item["portal"], item["dataset_id"]) for item in result.items if "dataset_id" in item]


def runs_of(result) -> list[dict]:
    return [item for item in result.items if "dataset_id" not in item]


def test_two_processes_harvest_every_dataset_exactly_once(harvest_world, shared_harvest):
    results, _, _ = shared_harvest
    assert [r.returncode for r in results] == [0, 0], results[0].log[-3000:]
    harvested = [pair for result in results for pair in datasets_of(result)]
    assert len(harvested) == len(set(harvested)) == HARVEST_DATASETS


def test_each_portal_is_harvested_by_one_process(shared_harvest):
    results, _, _ = shared_harvest
    portals = [[run["portal"] for run in runs_of(result)] for result in results]
    assert len(portals[0]) + len(portals[1]) == HARVEST_PORTALS
    assert not set(portals[0]) & set(portals[1])
    assert all(run["complete"] for result in results for run in runs_of(result))


def test_both_processes_do_part_of_the_work(shared_harvest):
    results, _, _ = shared_harvest
    shares = [len(runs_of(result)) for result in results]
    assert min(shares) >= HARVEST_PORTALS // 8, shares
    roles = sorted(result.stats_value("distributed/role") for result in results)
    assert roles == ["'follower'", "'seeder'"]


def test_mongodb_holds_each_dataset_once(shared_harvest):
    results, db, _ = shared_harvest
    assert db["raw_datasets"].count_documents({}) == HARVEST_DATASETS
    assert db["harvest_runs"].count_documents({"complete": True}) == HARVEST_PORTALS
    stored = sum(int(result.stats_value("mongodb/items")) for result in results)
    assert stored == HARVEST_DATASETS + HARVEST_PORTALS


def test_both_processes_share_one_run_timestamp(shared_harvest):
    results, db, _ = shared_harvest
    stamps = {run["run_timestamp"] for result in results for run in runs_of(result)}
    assert len(stamps) == 1
    assert db["raw_datasets"].distinct("harvested_at") == list(stamps)


def test_a_finished_run_leaves_nothing_in_redis(shared_harvest):
    results, _, keys_left = shared_harvest
    assert keys_left == []
    assert sorted(result.stats_value("distributed/left") for result in results) == ["'others_working'", "'removed'"]


# -- harvest: one large portal split between two processes ----------------------------------

LARGE_PORTAL = 3000


@pytest.fixture(scope="module")
def large_portal_world(tmp_path_factory):
    datasets = DatasetsSpec(count=LARGE_PORTAL, seed=77, notes_chars=40, resources=1)
    portal = spec.dataset_portal(spec.AddressPool("127.12.8.1"), datasets, name="large")
    for host in portal.hosts:
        # Slow enough that one process cannot finish all 16 ranges before the other starts.
        host.latency_ms = 80
    world = start_world([portal], tmp_path_factory.mktemp("large-portal-world"))
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture(scope="module")
def split_harvest(large_portal_world, redis_server, mongodb_server, tmp_path_factory):
    # HARVEST_SPLIT is left to distributed mode's default (16 ranges).
    yield from harvest_side_by_side(large_portal_world, redis_server, mongodb_server,
                                    tmp_path_factory.mktemp("split-harvest"), "split-test",
                                    {"portal": large_portal_world.portals[0].listed_url},
                                    HARVEST_PAGE_SIZE="100",
                                    RESOURCE_FACTS="none")  # the generated resource URLs lead nowhere


def test_two_processes_share_one_large_portal_and_harvest_it_once(large_portal_world, split_harvest):
    results, db, keys_left = split_harvest
    assert [r.returncode for r in results] == [0, 0], results[0].log[-3000:]
    harvested = [pair for result in results for pair in datasets_of(result)]
    assert len(harvested) == len(set(harvested)) == LARGE_PORTAL
    shares = [len(datasets_of(result)) for result in results]
    assert min(shares) >= LARGE_PORTAL // 8, shares
    ranges = [int(result.stats_value("harvest/datasets") or 0) for result in results]
    assert ranges == shares
    assert db["raw_datasets"].count_documents({}) == LARGE_PORTAL
    assert len(db["raw_datasets"].distinct("harvested_at")) == 1
    assert keys_left == []


def test_the_split_portal_gets_one_complete_run_from_whichever_process_ended_it(split_harvest):
    results, db, _ = split_harvest
    runs = [run for result in results for run in runs_of(result)]
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run["complete"], run["split"], run["datasets"], run["listed"], run["reported_count"]) == (
        True, 16, LARGE_PORTAL, LARGE_PORTAL, LARGE_PORTAL)
    assert run["errors"] == []
    assert db["harvest_runs"].count_documents({"complete": True, "split": 16}) == 1


def test_the_redis_ledger_concludes_once_when_parts_race_and_repeat(redis_server):
    import asyncio
    from types import SimpleNamespace

    from ckancrawl.distributed.connection import async_client
    from ckancrawl.distributed.keys import RunKeys
    from ckancrawl.split_ledger import RedisLedger

    async def race():
        # Two clients: two processes recording the 16 parts of one portal, each part
        # twice (a resumed run doing it again), all at once.
        runs = [SimpleNamespace(client=async_client(redis_server.url), keys=RunKeys.of("harvest", "ledger-test"))
                for _ in range(2)]
        ledgers = [RedisLedger(run) for run in runs]
        outcomes = await asyncio.gather(*(
            ledgers[(part + copy) % 2].record("http://p", part, 16, {"part": part, "copy": copy})
            for copy in range(2) for part in range(16)
        ))
        left = await runs[0].client.hgetall(runs[0].keys.ledger)
        for run in runs:
            await run.client.aclose()
        return outcomes, left

    outcomes, left = asyncio.run(race())
    concluded = [outcome for outcome in outcomes if outcome is not None]
    assert len(concluded) == 1
    results = concluded[0]
    assert [r["part"] for r in results] == list(range(16))  # one result per part, whichever came first
    # Only the two counters of the concluded portal stay (removed with the run).
    assert sorted(key.split("\x1f")[1] for key in left) == ["concluded", "done"]
    redis_server.command("DEL", "ckancrawl:harvest:ledger-test:ledger")


# -- sites: a census shared between two processes ---------------------------------------


@pytest.fixture(scope="module")
def sites_world(tmp_path_factory):
    # The slow presets answer after 20 s: they would set the pace of the whole run, and
    # tests/test_sites_crawl.py covers them.
    portals = [p for p in make_world(120, latency_ms=50) if not p.preset.startswith("slow")]
    world = start_world(portals, tmp_path_factory.mktemp("sites-world"))
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture(scope="module")
def shared_census(sites_world, redis_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shared-census")
    settings = {**sites_world.scrapy_settings(), **distributed(redis_server, "census", CKANCRAWL_REDIS_LOCAL_LIMIT="24")}
    return run_side_by_side("sites", tmp, 2, args={"urls": str(sites_world.write_urls_file(tmp / "urls.txt"))},
                            settings=settings)


def test_two_processes_probe_every_site_once_and_right(sites_world, shared_census):
    assert [r.returncode for r in shared_census] == [0, 0], shared_census[0].log[-3000:]
    items = [item for result in shared_census for item in result.items]
    assert sorted(item["listed_url"] for item in items) == sorted(p.listed_url for p in sites_world.portals)
    assert sites_world.judge(items) == {}
    assert len({item["run_timestamp"] for item in items}) == 1
    assert min(len(result.items) for result in shared_census) >= len(sites_world.portals) // 8


# -- an interrupted run ----------------------------------------------------------------------


def test_an_interrupted_run_is_resumed_by_the_next_process(sites_world, redis_server, tmp_path):
    urls = sites_world.write_urls_file(tmp_path / "urls.txt", [p for p in sites_world.portals if p.preset.startswith("healthy")][:40])
    settings = {**sites_world.scrapy_settings(), **distributed(redis_server, "resume", CKANCRAWL_REDIS_LOCAL_LIMIT="4")}
    first = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings={**settings, "CLOSESPIDER_ITEMCOUNT": "8"})
    assert first.stats_value("finish_reason") == "'closespider_itemcount'"
    assert "ckancrawl:sites:resume:requests" in redis_server.keys("ckancrawl:sites:resume:*")
    second = run_crawl("sites", tmp_path, args={"urls": str(urls)}, settings=settings)
    assert second.stats_value("distributed/role") == "'follower'"  # start() was read to its end already
    listed = [item["listed_url"] for item in first.items + second.items]
    assert sorted(listed) == sorted(Path(urls).read_text().split())
    assert {item["run_timestamp"] for item in first.items + second.items} == {first.items[0]["run_timestamp"]}
    assert redis_server.keys("ckancrawl:sites:resume:*") == []


def test_a_different_run_timestamp_is_refused(sites_world, redis_server, tmp_path):
    # As if another process had started the run with this timestamp.
    redis_server.command("SET", "ckancrawl:sites:mismatch:run-timestamp", "2026-11-22T03:00:00Z")
    urls = sites_world.write_urls_file(tmp_path / "urls.txt", sites_world.portals[:3])
    result = run_crawl("sites", tmp_path, args={"urls": str(urls), "run_timestamp": "2026-11-29T03:00:00Z"},
                       settings={**sites_world.scrapy_settings(), **distributed(redis_server, "mismatch")})
    assert result.stats_value("finish_reason") == "'run_timestamp_mismatch'"
    assert result.items == []
    assert "the distributed run ckancrawl:sites:mismatch has run_timestamp 2026-11-22T03:00:00Z" in result.log
    assert redis_server.keys("ckancrawl:sites:mismatch:*") == ["ckancrawl:sites:mismatch:run-timestamp"]


def test_unreachable_redis_stops_the_crawl_with_advice(tmp_path):
    closed = RedisServer(tmp_path / "gone")
    closed.stop()
    result = run_crawl("sites", tmp_path, args={"url": "http://127.0.0.1:9/"},
                       settings={"ADDONS": DISTRIBUTED_ADDON, "CKANCRAWL_REDIS_URL": closed.url})
    assert result.returncode != 0
    assert f"Redis at {closed.url} does not answer" in result.log
    assert "unset CKANCRAWL_REDIS_URL" in result.log


def test_a_password_in_the_redis_url_is_refused_before_it_is_logged(tmp_path):
    result = run_crawl("sites", tmp_path, args={"url": "http://127.0.0.1:9/"},
                       settings={"ADDONS": DISTRIBUTED_ADDON, "CKANCRAWL_REDIS_URL": "redis://:s3cret@127.0.0.1:9/0"})
    assert result.returncode != 0
    assert "CKANCRAWL_REDIS_PASSWORD" in result.log
    assert "s3cret" not in result.log


def test_a_process_that_loses_redis_finishes_what_it_holds_and_stops(sites_world, tmp_path):
    redis_server = RedisServer(tmp_path / "redis")
    try:
        urls = sites_world.write_urls_file(tmp_path / "urls.txt", sites_world.portals[:60])
        settings = {**sites_world.scrapy_settings(), **distributed(redis_server, "lost", CKANCRAWL_REDIS_LOCAL_LIMIT="4")}
        with ThreadPoolExecutor(1) as pool:
            crawl = pool.submit(run_crawl, "sites", tmp_path, args={"urls": str(urls)}, settings=settings)
            deadline = time.monotonic() + 30
            while not redis_server.keys("ckancrawl:sites:lost:seeded") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            redis_server.stop()
            result = crawl.result(timeout=60)
    finally:
        redis_server.stop()
    assert result.stats_value("finish_reason") == "'redis_unreachable'"
    assert 0 < len(result.items) < 60
    assert len({item["listed_url"] for item in result.items}) == len(result.items)
    assert "Redis stopped answering" in result.log
