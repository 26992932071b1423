"""``sites`` end to end: discovery from the real CKAN 2.11 catalog, probing the world,
storage in the real MongoDB-wire server."""
from __future__ import annotations

import pytest
from pymongo import MongoClient

from tests.crawl import run_crawl
from tests.world import spec
from tests.world.generate import make_world

PLACES = ("url", "resource", "notes")


def site_dataset(index: int, listed_url: str) -> dict:
    """A catalog `site` dataset with its URL in one of the places the original read."""
    name = f"site-{index:04d}"
    place = PLACES[index % len(PLACES)]
    dataset = {"name": name, "title": f"Site {index}", "notes": "A CKAN portal."}
    if place == "url":
        dataset["url"] = listed_url
    elif place == "resource":
        dataset["resources"] = [{"url": listed_url, "name": "Portal"}]
    else:
        dataset["notes"] = f"The portal lives at {listed_url} since 2019."
    return dataset


@pytest.fixture(scope="module")
def catalog_world(ckan_catalog, start_world_module):
    """160 portals (one of every preset, the rest healthy or faulty at random) listed in
    the catalog, plus a dataset without a URL and the catalog's own CKAN as a site."""
    pool = spec.AddressPool("127.20.0.1")
    portals = spec.one_of_each(pool)
    extra = make_world(160 - len(portals), faulty_share=0.1, latency_ms=0, seed=7, pool=pool)
    world = start_world_module(portals + extra)
    datasets = [site_dataset(i, portal.listed_url) for i, portal in enumerate(world.portals)]
    datasets.append({"name": "site-without-url", "title": "No URL", "notes": "Nothing to follow here."})
    datasets.append({"name": "site-the-catalog-itself", "title": "The catalog", "url": ckan_catalog.url + "/"})
    ckan_catalog.seed_site_datasets(datasets)
    by_dataset = {f"site-{i:04d}": portal for i, portal in enumerate(world.portals)}
    return world, by_dataset


@pytest.fixture(scope="module")
def start_world_module(tmp_path_factory):
    from tests.world.launcher import start_world

    started = []

    def start(portals):
        world = start_world(portals, tmp_path_factory.mktemp("catalog-world"))
        started.append(world)
        return world

    yield start
    for world in started:
        world.stop()


@pytest.fixture(scope="module")
def catalog_crawl(catalog_world, ckan_catalog, mongodb_server, tmp_path_factory):
    world, _ = catalog_world
    tmp = tmp_path_factory.mktemp("catalog-crawl")
    settings = {**world.scrapy_settings(), "MONGODB_DATABASE": "sites_catalog_test", "MONGODB_SPILL_DIR": str(tmp)}
    result = run_crawl(
        "sites", tmp, args={"catalog": ckan_catalog.url}, settings=settings,
        env={"MONGODB_URI": mongodb_server.uri},
    )
    assert result.returncode == 0, result.log[-3000:]
    return result, settings, tmp


@pytest.fixture
def sites_db(mongodb_server):
    client = MongoClient(mongodb_server.uri)
    yield client["sites_catalog_test"]
    client.close()


def test_every_site_dataset_of_the_catalog_is_probed_once(catalog_crawl, ckan_catalog):
    result, _, _ = catalog_crawl
    listed = ckan_catalog.search(fq="dataset_type:site", rows=0)["count"]
    assert listed >= 150
    names = [item["catalog_dataset"] for item in result.items]
    assert len(names) == len(set(names)) == listed


def test_values_match_the_truth_wherever_the_url_was_listed(catalog_crawl, catalog_world):
    result, _, _ = catalog_crawl
    _, by_dataset = catalog_world
    items = result.by("catalog_dataset")
    wrong = {}
    for name, portal in by_dataset.items():
        problems = portal.truth.mismatches(items[name])
        if items[name]["listed_url"] != portal.listed_url:
            problems.append(f"listed_url: {items[name]['listed_url']!r}")
        if problems:
            wrong[name] = problems
    assert wrong == {}


def test_dataset_without_url_is_recorded_with_the_reason(catalog_crawl):
    result, _, _ = catalog_crawl
    item = result.by("catalog_dataset")["site-without-url"]
    assert item["status"] == "failed"
    assert item["failure"].startswith("no url: the catalog dataset has no usable URL")
    assert item["num_datasets"] is None


def test_the_real_ckan_is_probed_as_a_site(catalog_crawl, ckan_catalog):
    result, _, _ = catalog_crawl
    item = result.by("catalog_dataset")["site-the-catalog-itself"]
    assert item["status"] == "ok", item
    assert item["api_url"] == ckan_catalog.url + "/api/3/action/"
    assert item["ckan_version"] == "2.11.6"
    assert {"activity", "datastore", "scheming_datasets"} <= set(item["extensions"])
    assert item["num_datasets"] == ckan_catalog.search(rows=0)["count"]
    assert item["num_datasets_method"] == "package_search"
    assert item["num_organizations"] == len(ckan_catalog.action("organization_list"))
    assert item["num_groups"] == len(ckan_catalog.action("group_list"))


def test_snapshots_are_stored_with_history_and_latest(catalog_crawl, sites_db):
    result, _, _ = catalog_crawl
    run = result.items[0]["run_timestamp"]
    assert sites_db.sites.count_documents({"run_timestamp": run}) == len(result.items)
    assert sites_db.sites_latest.count_documents({}) == len(result.items)
    stored = sites_db.sites_latest.find_one({"site": "site-the-catalog-itself"})
    assert stored["ckan_version"] == "2.11.6"


def test_rerun_of_the_same_run_does_not_duplicate(catalog_crawl, catalog_world, ckan_catalog, mongodb_server, sites_db):
    result, settings, tmp = catalog_crawl
    run = result.items[0]["run_timestamp"]
    again = run_crawl(
        "sites", tmp, args={"catalog": ckan_catalog.url, "run_timestamp": run}, settings=settings,
        env={"MONGODB_URI": mongodb_server.uri},
    )
    assert again.returncode == 0
    assert len(again.items) == len(result.items)
    assert sites_db.sites.count_documents({"run_timestamp": run}) == len(result.items)
    assert sites_db.sites.count_documents({}) == len(result.items)
