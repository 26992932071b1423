"""``sites`` end to end with the catalog writes on: discovery in the real CKAN 2.11
catalog, probing the simulated world, MongoDB, then package_patch of each site dataset
and a row per site in the datastore time series."""
from __future__ import annotations

import json

import pytest
from pymongo import MongoClient

from ckancrawl.catalog.series import SITES
from tests.catalog_crawl import catalog_settings, series_rows
from tests.crawl import run_crawl
from tests.world import spec
from tests.world.launcher import start_world

SERIES_DATASET = "cs-sites-series"
DATABASE = "catalog_sync_crawl"
FIELDS = ("num_datasets", "num_organizations", "num_groups", "ckan_version", "extensions")
#: Curated profile values in every dataset: profile fields are only filled where empty
#: (tests/test_catalog_sync_profile.py), so these keep the tests about measured values.
CURATED_PROFILE = {"site_type": "Government", "location": "Somewhere", "latitude": "1", "longitude": "2",
                   "language": "en", "notes": "Curated."}


def portals():
    pool = spec.AddressPool("127.31.0.1")
    return {
        "cs-same": spec.ckan_portal(pool, num_datasets=120, num_organizations=12, num_groups=5),
        "cs-stale": spec.ckan_portal(pool, version="2.10.4", num_datasets=300, num_organizations=20, num_groups=7),
        "cs-partial": spec.partial(pool),  # organization_list answers 500
        "cs-hidden": spec.hidden_version(pool),  # no ckan_version
        "cs-down": spec.nothing_listening(pool),
        "cs-fresh": spec.ckan_portal(pool, version="2.9.11", num_datasets=5, num_organizations=1, num_groups=0),
    }


def truth_values(portal):
    truth = portal.truth
    return {f: getattr(truth, f) for f in FIELDS}


@pytest.fixture(scope="module")
def world(ckan_catalog, tmp_path_factory):
    specs = portals()
    running = start_world(list(specs.values()), tmp_path_factory.mktemp("cs-world"))
    by_dataset = dict(zip(specs, running.portals))
    same = truth_values(by_dataset["cs-same"])
    seeded = {
        "cs-same": {**same, "extensions": list(reversed(same["extensions"]))},
        "cs-stale": {"num_datasets": 250, "num_organizations": 20, "num_groups": 6, "ckan_version": "2.9.5",
                     "extensions": ["stats"]},
        "cs-partial": {"num_datasets": 1, "num_organizations": 77},
        "cs-hidden": {"ckan_version": "2.10.1", "num_datasets": 2},
        "cs-down": {"num_datasets": 42, "ckan_version": "2.8.0"},
        "cs-fresh": {},
    }
    ckan_catalog.seed_site_datasets([
        {"name": name, "title": name, "url": portal.listed_url, **CURATED_PROFILE, **seeded[name]}
        for name, portal in by_dataset.items()
    ])
    before = {name: ckan_catalog.action("package_show", id=name) for name in by_dataset}
    yield running, by_dataset, before
    running.stop()


@pytest.fixture(scope="module")
def first_crawl(world, ckan_catalog, mongodb_server, tmp_path_factory):
    running, _, _ = world
    tmp = tmp_path_factory.mktemp("cs-crawl")
    settings = {**running.scrapy_settings(), **catalog_settings(ckan_catalog, tmp), "LOG_LEVEL": "DEBUG",
                "MONGODB_DATABASE": DATABASE, "DATASTORE_SITES_DATASET": SERIES_DATASET}
    env = {"MONGODB_URI": mongodb_server.uri, "CKAN_API_KEY": ckan_catalog.api_key}
    result = run_crawl("sites", tmp, args={"catalog": ckan_catalog.url}, settings=settings, env=env)
    assert result.returncode == 0, result.log[-3000:]
    return result, settings, env, tmp


@pytest.fixture(scope="module")
def rerun(first_crawl, world, ckan_catalog):
    """The same run again (same run_timestamp), as a resumed or repeated crawl."""
    result, settings, env, tmp = first_crawl
    run = result.items[0]["run_timestamp"]
    modified = {name: ckan_catalog.action("package_show", id=name)["metadata_modified"] for name in world[1]}
    rows = series_rows(ckan_catalog, SITES, SERIES_DATASET)
    again = run_crawl("sites", tmp, args={"catalog": ckan_catalog.url, "run_timestamp": run}, settings=settings,
                      env=env)
    assert again.returncode == 0, again.log[-3000:]
    return again, modified, rows


def stored(ckan_catalog, name):
    dataset = ckan_catalog.action("package_show", id=name)
    return {f: dataset.get(f) for f in FIELDS}


def as_catalog(values):
    """Measured values as scheming gives them back: integers as text."""
    return {f: (str(v) if isinstance(v, int) else v) for f, v in values.items()}


def updated_datasets(log):
    return {line.split("Catalog dataset ", 1)[1].split(" updated:", 1)[0]
            for line in log.splitlines() if " updated: " in line and "Catalog dataset cs-" in line}


def test_changed_datasets_get_the_measured_values(first_crawl, world, ckan_catalog):
    _, by_dataset, _ = world
    for name in ("cs-stale", "cs-fresh"):
        want = as_catalog(truth_values(by_dataset[name]))
        got = stored(ckan_catalog, name)
        assert {**got, "extensions": sorted(got["extensions"])} == want, name


def test_only_changed_datasets_are_patched(first_crawl):
    result, *_ = first_crawl
    assert updated_datasets(result.log) == {"cs-stale", "cs-partial", "cs-hidden", "cs-fresh"}


def test_the_datasets_are_read_in_batches(first_crawl):
    result, *_ = first_crawl
    # Items arrive in waves (healthy sites first, then those that waited for retries);
    # each wave shares one read, so there are fewer reads than the six datasets.
    assert int(result.stats_value("catalog_sync/calls/package_search")) <= 3
    assert result.stats_value("catalog_sync/calls/package_show") is None


def test_an_up_to_date_dataset_is_not_written(first_crawl, world, ckan_catalog):
    _, _, before = world
    after = ckan_catalog.action("package_show", id="cs-same")
    assert after["metadata_modified"] == before["cs-same"]["metadata_modified"]


def test_known_values_stay_where_the_crawl_learnt_nothing(first_crawl, world, ckan_catalog):
    _, by_dataset, before = world
    assert stored(ckan_catalog, "cs-partial")["num_organizations"] == "77"
    assert stored(ckan_catalog, "cs-partial")["num_datasets"] == str(by_dataset["cs-partial"].truth.num_datasets)
    assert stored(ckan_catalog, "cs-hidden")["ckan_version"] == "2.10.1"
    down = ckan_catalog.action("package_show", id="cs-down")
    assert (down["num_datasets"], down["ckan_version"]) == ("42", "2.8.0")
    assert down["metadata_modified"] == before["cs-down"]["metadata_modified"]


def test_each_site_gets_a_row_in_the_time_series(first_crawl, world, ckan_catalog):
    result, *_ = first_crawl
    _, by_dataset, _ = world
    rows = {row["name"]: row for row in series_rows(ckan_catalog, SITES, SERIES_DATASET)}
    run = result.items[0]["run_timestamp"].rstrip("Z")
    for name, portal in by_dataset.items():
        row = rows[name]
        assert row["run_timestamp"] == run
        truth = truth_values(portal)
        assert {f: row[f] for f in FIELDS} == {**truth, "extensions": truth["extensions"]}, name
    assert rows["cs-down"]["status"] == "failed" and rows["cs-down"]["failure"].startswith("connection refused")
    assert rows["cs-partial"]["num_organizations"] is None  # unknown is NULL, never 0


def test_every_item_of_the_run_is_in_the_series(first_crawl, ckan_catalog):
    result, *_ = first_crawl
    rows = series_rows(ckan_catalog, SITES, SERIES_DATASET)
    assert sorted(row["name"] for row in rows) == sorted(item["site"] for item in result.items)
    assert result.stats_value("datastore/rows_written") == str(len(result.items))


def test_the_series_table_is_created_with_its_declared_columns(first_crawl, ckan_catalog):
    dataset = ckan_catalog.action("package_show", id=SERIES_DATASET)
    (resource,) = dataset["resources"]
    assert resource["name"] == "CKAN Sites Dynamic Metadata" and resource["datastore_active"]
    fields = ckan_catalog.action("datastore_search", resource_id=resource["id"], limit=0)["fields"]
    assert [(f["id"], f["type"]) for f in fields[1:]] == [(c.id, c.type) for c in SITES.columns]


def test_a_rerun_writes_nothing_new(rerun, world, ckan_catalog):
    again, modified, rows = rerun
    assert updated_datasets(again.log) == set()
    for name in world[1]:
        assert ckan_catalog.action("package_show", id=name)["metadata_modified"] == modified[name], name
    assert sorted(series_rows(ckan_catalog, SITES, SERIES_DATASET), key=lambda r: r["name"]) == \
        sorted(rows, key=lambda r: r["name"])


def test_dry_run_logs_the_diff_and_writes_nothing(rerun, world, ckan_catalog, tmp_path):
    ckan_catalog.action("package_patch", id="cs-stale", num_groups=1)
    running, by_dataset, _ = world
    settings = {**running.scrapy_settings(), **catalog_settings(ckan_catalog, tmp_path, CATALOG_SYNC_DRY_RUN=True),
                "DATASTORE_SERIES_ENABLED": "False", "ITEM_PIPELINES": json.dumps(
                    {"ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline": 400})}
    result = run_crawl("sites", tmp_path, args={"catalog": ckan_catalog.url}, settings=settings,
                       env={"CKAN_API_KEY": ckan_catalog.api_key})
    assert result.returncode == 0, result.log[-3000:]
    assert "Catalog dataset cs-stale (dry run, nothing written): would set num_groups '1' -> 7" in result.log
    assert stored(ckan_catalog, "cs-stale")["num_groups"] == "1"
    assert result.stats_value("catalog_sync/writes") is None
    ckan_catalog.action("package_patch", id="cs-stale", num_groups=by_dataset["cs-stale"].truth.num_groups)


def test_the_api_key_appears_in_no_log_item_stat_or_document(first_crawl, rerun, ckan_catalog, mongodb_server):
    result, *_ = first_crawl
    again, *_ = rerun
    key = ckan_catalog.api_key
    assert "[ckancrawl.catalog" in result.log  # the catalog writers did log (DEBUG run)
    assert key not in result.log and key not in again.log
    assert key not in json.dumps(result.items)
    with MongoClient(mongodb_server.uri) as client:
        documents = list(client[DATABASE].sites.find({}, {"_id": 0}))
    assert documents and key not in json.dumps(documents, default=str)


def test_writes_are_off_without_the_key_with_one_clear_line(world, tmp_path):
    running, by_dataset, _ = world
    settings = {**running.scrapy_settings(), "ITEM_PIPELINES": json.dumps({
        "ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline": 400,
        "ckancrawl.pipelines.datastore_series.DatastoreSeriesPipeline": 500}), "CATALOG_SYNC_ENABLED": "True"}
    result = run_crawl("sites", tmp_path, args={"url": by_dataset["cs-same"].listed_url}, settings=settings)
    assert result.returncode == 0
    assert result.log.count("Catalog sync is off: CATALOG_SYNC_ENABLED is set but CKAN_API_KEY is not in the "
                            "environment") == 1
    assert result.log.count("Datastore time series is off (DATASTORE_SERIES_ENABLED is not set)") == 1
    assert len(result.items) == 1
