"""The ``harvest`` spider against the real CKAN 2.11 of the test catalog.

The catalog gets 2,600 datasets of the default ``dataset`` type in an organization of
their own (more than two pages of 1000), seeded once per session as CKAN model objects
(tests/ckan/seed_datasets.py); the seconds it took are shown with the catalog's
start-up phases at the end of the run ("seed_harvest_datasets", and
"first_harvest_crawl" for the first full harvest, scrapy start-up included). Other tests count
``site`` and ``extension`` datasets by type and are not affected.

The tests share one repository (a database of their own) and run in file order, each
harvesting again after changing the catalog: every assertion is about what the run
in that test did.
"""
from __future__ import annotations

import time
import uuid

import pytest

from tests.ckan.seed_datasets import run_seeders
from tests.crawl import run_crawl

ORG = "ckancrawl-harvest-org"
PREFIX = "harvest"
COUNT = 2600


@pytest.fixture(scope="module")
def source_portal(catalog_stack, ckan_catalog):
    """The catalog with COUNT harvest datasets (seeded on first use in the session)."""
    ckan_catalog.create_organization(ORG)
    have = ckan_catalog.search(fq=f"organization:{ORG}", rows=0)["count"]
    if have == 0:
        report = run_seeders(str(catalog_stack.ckan.python), str(catalog_stack.ckan.ini), ORG, PREFIX, COUNT)
        catalog_stack.timings["seed_harvest_datasets"] = report["seconds"]
        assert report["created"] == COUNT
    return ckan_catalog


@pytest.fixture(scope="module")
def repository(mongodb_server):
    name = f"harvest_{uuid.uuid4().hex[:8]}"
    with mongodb_server.client() as client:
        yield client[name]
        client.drop_database(name)


def harvest(tmp_path, mongodb_server, repository, url, args=None, **settings):
    settings = {"MONGODB_DATABASE": repository.name, "MONGODB_SPILL_DIR": str(tmp_path / "spill"),
                "DOWNLOAD_TIMEOUT": "60", "RESOURCE_FACTS": "none", **settings}
    args = args or {}
    started = time.monotonic()
    result = run_crawl("harvest", tmp_path, args={"portal": url, **args}, settings=settings,
                       env={"MONGODB_URI": mongodb_server.uri}, timeout=600)
    assert result.returncode == 0, result.log[-4000:]
    result.seconds = time.monotonic() - started
    result.run = next(item for item in result.items if "run_timestamp" in item)
    result.datasets = [item for item in result.items if "dataset_id" in item]
    return result


def public_ids(catalog) -> set[str]:
    ids, start = set(), 0
    while True:
        page = catalog.search(q="*:*", fl="id", rows=1000, start=start, sort="id asc")["results"]
        ids |= {entry["id"] for entry in page}
        if len(page) < 1000:
            return ids
        start += 1000


@pytest.fixture(scope="module")
def first_harvest(source_portal, catalog_stack, mongodb_server, repository, tmp_path_factory):
    expected = public_ids(source_portal)
    done = harvest(tmp_path_factory.mktemp("harvest"), mongodb_server, repository, source_portal.url)
    # Shown with the catalog's phases at the end of the run, beside the seeding time.
    catalog_stack.timings["first_harvest_crawl"] = round(done.seconds, 2)
    return done, expected


def test_every_public_dataset_is_harvested_once_in_pages_of_1000(first_harvest, source_portal):
    done, expected = first_harvest
    ids = [d["dataset_id"] for d in done.datasets]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert len(expected) >= COUNT
    run = done.run
    assert run["complete"] is True and run["method"] == "search" and run["since"] is None
    assert run["reported_count"] == len(expected) and run["api_url"] == source_portal.url + "/api/3/action/"
    assert done.stats_value("harvest/datasets") == str(len(expected))
    pages = int(done.stats_value("harvest/search_pages"))
    assert pages == -(-len(expected) // 1000) and pages >= 3


def test_the_repository_holds_the_datasets_as_ckan_sent_them(first_harvest, repository, source_portal):
    done, expected = first_harvest
    assert repository.raw_datasets.count_documents({"portal": source_portal.url}) == len(expected)
    stored = repository.raw_datasets.find_one({"name": f"{PREFIX}-000001"})
    shown = source_portal.action("package_show", id=f"{PREFIX}-000001")
    assert stored["raw"] == shown, "package_search and package_show give the same dataset"
    assert {e["key"] for e in stored["raw"]["extras"]} >= {"dcat.theme", "$schema", "título"}
    assert stored["metadata_modified"] == shown["metadata_modified"]
    assert repository.harvest_runs.find_one({"run_timestamp": done.run["run_timestamp"]})["complete"] is True


def test_rerun_of_an_unchanged_portal_writes_nothing(first_harvest, source_portal, mongodb_server, repository, tmp_path):
    again = harvest(tmp_path, mongodb_server, repository, source_portal.url, {"since": "all"})
    assert len(again.datasets) == len(public_ids(source_portal))
    assert int(again.stats_value("mongodb/raw_unchanged")) == len(again.datasets)
    assert again.stats_value("mongodb/raw_changed") is None and again.stats_value("mongodb/raw_created") is None
    assert again.stats_value("mongodb/documents_written") == "1"  # the run document
    incremental = harvest(tmp_path, mongodb_server, repository, source_portal.url, HARVEST_SINCE_MARGIN="0")
    assert incremental.run["since_source"] == "last complete harvest"
    assert incremental.datasets == []
    assert incremental.run["listed"] == len(again.datasets) and incremental.run["deleted_ids"] == []


def test_one_changed_dataset_adds_one_history_version(first_harvest, source_portal, mongodb_server, repository,
                                                       tmp_path):
    name = f"{PREFIX}-000010"
    before = repository.raw_datasets.find_one({"name": name})
    source_portal.action("package_patch", id=name, notes="Corrected description")
    again = harvest(tmp_path, mongodb_server, repository, source_portal.url, HARVEST_SINCE_MARGIN="0")
    assert [d["name"] for d in again.datasets] == [name], "incremental: only the changed dataset is fetched"
    assert again.stats_value("mongodb/raw_changed") == "1"
    history = list(repository.raw_datasets_history.find({"dataset_id": before["dataset_id"]}))
    assert len(history) == 1 and history[0]["content_hash"] == before["content_hash"]
    assert history[0]["superseded_at"] == again.run["run_timestamp"]
    now = repository.raw_datasets.find_one({"name": name})
    assert now["raw"]["notes"] == "Corrected description" and now["first_harvested_at"] == before["harvested_at"]


def test_one_removed_dataset_is_marked_deleted(first_harvest, source_portal, mongodb_server, repository, tmp_path):
    name = f"{PREFIX}-000020"
    dataset_id = repository.raw_datasets.find_one({"name": name})["dataset_id"]
    source_portal.action("package_delete", id=name)
    again = harvest(tmp_path, mongodb_server, repository, source_portal.url)
    assert again.run["complete"] is True and again.run["deleted_ids"] == [dataset_id]
    stored = repository.raw_datasets.find_one({"dataset_id": dataset_id})
    assert stored["deleted"] is True and stored["deleted_at"] == again.run["run_timestamp"]
    assert stored["raw"]["name"] == name, "kept, never removed"
    assert repository.raw_datasets.count_documents({"deleted": True}) == 1
