"""The catalog goes down in the middle of a ``sites`` crawl: no time series row and no
catalog update is lost once it is back (the next crawl, the replay and sync commands)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from ckancrawl.catalog.series import SITES
from tests.catalog_crawl import catalog_settings, series_rows, series_table
from tests.crawl import PROJECT_ROOT, TEST_SETTINGS, crawl_command, run_crawl
from tests.world import spec
from tests.world.launcher import start_world

PORTALS = 30
SERIES_DATASET = "outage-sites-series"
DATABASE = "datastore_outage"


@pytest.fixture(scope="module")
def world(ckan_catalog, tmp_path_factory):
    pool = spec.AddressPool("127.33.0.1")
    portals = [spec.ckan_portal(pool, latency_ms=300, num_datasets=100 + i, num_groups=i) for i in range(PORTALS)]
    running = start_world(portals, tmp_path_factory.mktemp("outage-world"))
    by_dataset = {f"outage-{i:02d}": portal for i, portal in enumerate(running.portals)}
    ckan_catalog.seed_site_datasets([{"name": name, "title": name, "url": portal.listed_url, "num_datasets": 1}
                                     for name, portal in by_dataset.items()])
    yield running, by_dataset
    running.stop()


def rows_so_far(ckan_catalog) -> int:
    table = series_table(ckan_catalog, SITES, SERIES_DATASET)
    try:
        dataset = ckan_catalog.action("package_show", id=SERIES_DATASET)
        resource = [r for r in dataset["resources"] if r["name"] == SITES.default_resource]
        if not resource:
            return 0
        return ckan_catalog.action("datastore_search", resource_id=resource[0]["id"], limit=0)["total"]
    except Exception:
        return 0
    finally:
        table.client.close()


@pytest.fixture(scope="module")
def outage(world, ckan_catalog, mongodb_server, catalog_stack, tmp_path_factory):
    """Crawl; stop CKAN once some rows are in; let the crawl end; start CKAN again."""
    running, _ = world
    tmp = tmp_path_factory.mktemp("outage")
    settings = {**TEST_SETTINGS, **running.scrapy_settings(), **catalog_settings(ckan_catalog, tmp),
                "MONGODB_DATABASE": DATABASE, "DATASTORE_SITES_DATASET": SERIES_DATASET,
                "DATASTORE_BATCH_SIZE": "5", "DATASTORE_FLUSH_INTERVAL": "0.5", "CATALOG_RETRY_TIMES": "1",
                "CATALOG_TIMEOUT": "3", "CONCURRENT_REQUESTS": "4"}
    env = {"MONGODB_URI": mongodb_server.uri, "CKAN_API_KEY": ckan_catalog.api_key}
    feed = tmp / "run1.jsonl"
    command, child_env, _ = crawl_command("sites", tmp, args={"catalog": ckan_catalog.url}, settings=settings,
                                          env=env, feed_path=feed)
    with open(tmp / "run1.log", "w") as log:
        crawl = subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while rows_so_far(ckan_catalog) < 5:
                assert crawl.poll() is None, "the crawl ended before any row was written"
                assert time.monotonic() < deadline, "no row was written within 90 s"
                time.sleep(0.2)
            catalog_stack.ckan.stop()
            crawl.wait(timeout=180)
        finally:
            if crawl.poll() is None:
                crawl.kill()
            if not catalog_stack.ckan.is_running():
                catalog_stack.ckan.start()
    items = [json.loads(line) for line in feed.read_text().splitlines() if line.strip()]
    return items, (tmp / "run1.log").read_text(), settings, env, tmp


def test_the_crawl_finishes_and_keeps_what_the_catalog_did_not_take(outage, ckan_catalog):
    items, log, *_ = outage
    assert len([i for i in items if i["site"].startswith("outage-")]) == PORTALS
    assert "does not answer" in log and "not written (the catalog did not answer), saved in" in log
    assert 0 < rows_so_far(ckan_catalog) < len(items)


def test_mongodb_holds_every_snapshot_of_the_run(outage, mongodb_server):
    items, *_ = outage
    with MongoClient(mongodb_server.uri) as client:
        stored = client[DATABASE].sites.count_documents({"run_timestamp": items[0]["run_timestamp"]})
    assert stored == len(items)


@pytest.fixture(scope="module")
def next_crawl(outage, world, ckan_catalog):
    """A later, small crawl with the same pending directory."""
    _, log, settings, env, tmp = outage
    running, by_dataset = world
    single = {**settings, "CATALOG_URL": ckan_catalog.url}
    result = run_crawl("sites", tmp, args={"url": by_dataset["outage-00"].listed_url}, settings=single, env=env)
    assert result.returncode == 0, result.log[-3000:]
    return result


def test_the_next_crawl_writes_the_rows_left_behind(outage, next_crawl, ckan_catalog):
    items, _, _, _, tmp = outage
    run = items[0]["run_timestamp"].rstrip("Z")
    rows = [r for r in series_rows(ckan_catalog, SITES, SERIES_DATASET) if r["run_timestamp"] == run]
    assert sorted(r["name"] for r in rows) == sorted(i["site"] for i in items)  # each once: nothing lost, no copy
    assert int(next_crawl.stats_value("datastore/rows_from_pending")) > 0
    assert list((tmp / "pending").glob("*")) == []


def test_the_replay_command_then_finds_nothing_missing(outage, next_crawl, ckan_catalog, mongodb_server):
    items, _, settings, env, _ = outage
    run = items[0]["run_timestamp"]
    done = catalog_command(["replay", "sites", "--run", run], settings, env, ckan_catalog)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (f"sites run {run}: {len(items)} in MongoDB, {len(items)} in the "
                                           f"datastore, 0 rows written")


def test_the_sync_command_updates_the_datasets_the_outage_skipped(outage, next_crawl, world, ckan_catalog):
    _, log, settings, env, _ = outage
    _, by_dataset = world
    done = catalog_command(["sync", "sites"], settings, env, ckan_catalog)
    assert done.returncode == 0, done.stderr
    for name, portal in by_dataset.items():
        dataset = ckan_catalog.action("package_show", id=name)
        assert (dataset["num_datasets"], dataset["num_groups"]) == (
            str(portal.truth.num_datasets), str(portal.truth.num_groups)), name
    assert "Not updated: outage-" in log  # the outage did keep some datasets from being synced


def catalog_command(arguments, settings, env, ckan_catalog) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ckancrawl.catalog", *arguments, "--catalog", ckan_catalog.url]
    for name in ("MONGODB_DATABASE", "DATASTORE_SITES_DATASET", "CATALOG_RETRY_BACKOFF"):
        command += ["-s", f"{name}={settings[name]}"]
    child_env = {**{k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "CKAN_API_KEY")}, **env}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=child_env, capture_output=True, text=True, timeout=120)
