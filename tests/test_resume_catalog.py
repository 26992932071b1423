"""A ``sites`` crawl that writes to the catalog, killed with ``kill -9`` twice and resumed:
afterwards MongoDB, the catalog's datasets and the datastore time series hold what one
uninterrupted run writes: every site once, the measured values, one run timestamp.

Real CKAN 2.11 catalog (ckanext-scheming ``site`` type, datastore), real MongoDB-wire
server, real ``scrapy crawl`` processes with a JOBDIR; the sites are the simulated
world's, slow enough for the kills to land mid-crawl.
"""
from __future__ import annotations

import time

import pytest
from pymongo import MongoClient

from ckancrawl.catalog.series import SITES
from tests.catalog_crawl import catalog_settings, series_rows
from tests.crawl import kill_at_each, run_crawl, start_crawl
from tests.world import spec
from tests.world.launcher import start_world

PORTALS = 12
SERIES_DATASET = "rc-sites-series"
DATABASE = "resume_catalog"
CURATED_PROFILE = {"site_type": "Government", "location": "Somewhere", "latitude": "1", "longitude": "2",
                   "language": "en", "notes": "Curated."}


@pytest.fixture(scope="module")
def world(ckan_catalog, tmp_path_factory):
    pool = spec.AddressPool("127.35.0.1")
    portals = [spec.ckan_portal(pool, latency_ms=250, num_datasets=40 + i, num_groups=i % 4) for i in range(PORTALS)]
    running = start_world(portals, tmp_path_factory.mktemp("rc-world"))
    by_dataset = {f"rc-{i:02d}": portal for i, portal in enumerate(running.portals)}
    ckan_catalog.seed_site_datasets([{"name": name, "title": name, "url": portal.listed_url, **CURATED_PROFILE}
                                     for name, portal in by_dataset.items()])
    yield running, by_dataset
    running.stop()


def mine(client: MongoClient) -> list[dict]:
    return [doc for doc in client[DATABASE].sites.find() if doc["site"].startswith("rc-")]


def test_a_catalog_crawl_killed_twice_and_resumed_writes_everything_once(world, ckan_catalog, mongodb_server,
                                                                         tmp_path):
    running, by_dataset = world
    settings = {**running.scrapy_settings(), **catalog_settings(ckan_catalog, tmp_path),
                "MONGODB_DATABASE": DATABASE, "DATASTORE_SITES_DATASET": SERIES_DATASET,
                "JOBDIR": str(tmp_path / "job"), "CONCURRENT_REQUESTS": "3", "AUTOTHROTTLE_ENABLED": "False",
                "MONGODB_BATCH_SIZE": "2", "MONGODB_FLUSH_INTERVAL": "0.3",
                "DATASTORE_BATCH_SIZE": "2", "DATASTORE_FLUSH_INTERVAL": "0.3"}
    env = {"MONGODB_URI": mongodb_server.uri, "CKAN_API_KEY": ckan_catalog.api_key}
    args = {"catalog": ckan_catalog.url}
    with MongoClient(mongodb_server.uri) as client:
        kill_at_each(lambda: start_crawl("sites", tmp_path, args=args, settings=settings, env=env,
                                         log_path=tmp_path / f"killed-{time.monotonic_ns()}.log"),
                     [lambda: len(mine(client)) >= 2, lambda: len(mine(client)) >= 7])
        assert len(mine(client)) < PORTALS
        resumed = run_crawl("sites", tmp_path, args=args, settings=settings, env=env)
        assert resumed.returncode == 0, resumed.log[-3000:]
        assert "Resuming the run of" in resumed.log
        docs = mine(client)

    stamp = (tmp_path / "job" / "run_timestamp").read_text().strip()
    assert sorted(doc["site"] for doc in docs) == sorted(by_dataset)  # each once
    assert {doc["run_timestamp"] for doc in docs} == {stamp}

    rows = [row for row in series_rows(ckan_catalog, SITES, SERIES_DATASET) if row["name"].startswith("rc-")]
    assert sorted(row["name"] for row in rows) == sorted(by_dataset)  # one row per site, no copy
    assert {row["run_timestamp"] for row in rows} == {stamp.rstrip("Z")}
    for row in rows:
        truth = by_dataset[row["name"]].truth
        assert (row["num_datasets"], row["num_groups"]) == (truth.num_datasets, truth.num_groups), row

    for name, portal in by_dataset.items():
        dataset = ckan_catalog.action("package_show", id=name)
        assert (dataset["num_datasets"], dataset["num_groups"], dataset["ckan_version"]) == (
            str(portal.truth.num_datasets), str(portal.truth.num_groups), portal.truth.ckan_version), name
        assert dataset["site_type"] == "Government"  # curated values untouched
