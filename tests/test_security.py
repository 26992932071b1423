"""Secrets never leak and portal data cannot steer MongoDB writes.

- Every spider runs with a recognisable fake CKAN_API_KEY and GITHUB_TOKEN in its
  environment, at DEBUG level, storing in MongoDB, with the catalog sync switched on
  (it holds the key; items listed by URL have no catalog dataset to patch); the secrets must
  appear in no log, stats dump, feed, job directory, spill file or stored document.
- A portal whose datasets carry MongoDB operators and identity fields as keys and
  values (``$set``, ``_id``, ``{"$gt": ""}``, ``portal``, ``dataset_id``) is harvested:
  each dataset is stored once, under its own identity, with the operators kept as
  (encoded) data, and a document stored before is untouched.
"""
from __future__ import annotations

import uuid

import pytest
from bson import json_util

from tests.crawl import run_crawl
from tests.fixtures.github import FAKE_TOKEN
from tests.world import spec
from tests.world.datasets import DatasetsSpec

FAKE_CKAN_KEY = "ckan-FAKE-api-key-5ecret-0f-the-catalog-7c1e"
SECRETS = (FAKE_CKAN_KEY, FAKE_TOKEN)
EXTENSION_REPO = {"id": 7, "owner": "ckan", "name": "ckanext-secret", "contributors": 3, "stars": 4}


@pytest.fixture(scope="module")
def security_world(tmp_path_factory):
    from tests.world.launcher import start_world

    pool = spec.AddressPool("127.14.4.1")
    portals = [
        spec.dataset_portal(pool, DatasetsSpec(count=12, seed=3), name="plain"),
        spec.dataset_portal(pool, DatasetsSpec(count=4, seed=4, shapes=["injection"]), name="injection"),
    ]
    world = start_world(portals, tmp_path_factory.mktemp("security-world"))
    try:
        yield world
    finally:
        world.stop()


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_secrets_appear_in_no_log_stats_feed_or_document(security_world, github_standin, mongodb_server, tmp_path):
    github = github_standin([EXTENSION_REPO])
    portal = security_world.portal("plain").listed_url
    database = f"secrets_{uuid.uuid4().hex[:8]}"
    repos = tmp_path / "repos.txt"
    repos.write_text("ckan/ckanext-secret\n")
    common = {
        **security_world.scrapy_settings(),
        "LOG_LEVEL": "DEBUG",
        "MONGODB_DATABASE": database,
        "MONGODB_SPILL_DIR": str(tmp_path / "spill"),
        "JOBDIR": str(tmp_path / "job"),
        # The catalog sync is on, against a portal that is no catalog: its failures are
        # logged with whatever they carry.
        "CATALOG_SYNC_ENABLED": "true",
        "CATALOG_URL": portal,
        "CATALOG_RETRY_TIMES": "0",
        "DATASTORE_PENDING_DIR": str(tmp_path / "pending"),
        "GITHUB_API_URL": github.url,
        "GITHUB_GRAPHQL_URL": github.graphql_url,
        "GITHUB_CACHE_DIR": str(tmp_path / "github-cache"),
    }
    env = {"CKAN_API_KEY": FAKE_CKAN_KEY, "GITHUB_TOKEN": FAKE_TOKEN, "GITHUB_TOKENS": "",
           "MONGODB_URI": mongodb_server.uri}
    runs = {
        "sites": {"url": portal},
        "harvest": {"portal": portal, "since": "all"},
        "extensions": {"repos": str(repos)},
    }
    results = {}
    for spider, args in runs.items():
        result = results[spider] = run_crawl(spider, tmp_path, args=args, settings={**common, "JOBDIR": str(tmp_path / f"job-{spider}")},
                           env=env)
        assert result.items, (spider, result.log[-3000:])
        assert "'item_scraped_count'" in result.log  # the stats dump is in the log
        assert leaks(result.log) == [], spider
        assert leaks(result.feed.read_text(encoding="utf-8")) == [], spider
    # Not vacuous: the stand-in answers only requests that carry the token. (The key
    # reaching a real catalog and its errors: tests/test_catalog_sync_client.py.)
    assert results["extensions"].items[0]["status"] == "ok"
    with mongodb_server.client() as client:
        db = client[database]
        stored = {name: list(db[name].find()) for name in db.list_collection_names()}
    assert {"sites", "raw_datasets", "extensions"} <= set(stored)
    assert leaks(json_util.dumps(stored)) == []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes().decode("utf-8", "replace")) == [], path


def test_portal_data_cannot_inject_operators_or_change_the_written_document(security_world, mongodb_server, tmp_path):
    database = f"injection_{uuid.uuid4().hex[:8]}"
    env = {"MONGODB_URI": mongodb_server.uri}
    settings = {**security_world.scrapy_settings(), "MONGODB_DATABASE": database,
                "MONGODB_SPILL_DIR": str(tmp_path / "spill")}
    plain = security_world.portal("plain").listed_url.rstrip("/")
    first = run_crawl("harvest", tmp_path, args={"portal": plain, "since": "all"}, settings=settings, env=env)
    assert first.returncode == 0, first.log[-3000:]
    with mongodb_server.client() as client:
        before = {doc["_id"]: doc for doc in client[database].raw_datasets.find()}
    assert len(before) == 12

    injected = security_world.portal("injection").listed_url.rstrip("/")
    result = run_crawl("harvest", tmp_path, args={"portal": injected, "since": "all"}, settings=settings, env=env)
    assert result.returncode == 0, result.log[-3000:]
    with mongodb_server.client() as client:
        docs = list(client[database].raw_datasets.find())
        after_plain = {doc["_id"]: doc for doc in docs if doc["portal"] == plain}
    injected_docs = [doc for doc in docs if doc["portal"] == injected]
    assert len(docs) == 16 and len(injected_docs) == 4  # one document per dataset, none elsewhere
    assert after_plain == before  # the documents of another portal are untouched
    for doc in injected_docs:
        assert isinstance(doc["dataset_id"], str) and len(doc["dataset_id"]) == 36
        raw = doc["raw"]
        # Operators are data, stored under encoded keys; identity fields stay inside raw.
        assert raw["%24set"] == {"raw": "overwritten", "portal": "http://victim.example"}
        assert raw["%24where"] == "sleep(1000)"
        assert raw["_id"] == {"%24gt": ""}
        assert raw["portal"] == {"%24ne": None} and raw["dataset_id"] == {"%24gt": ""}
        assert raw["notes"] == "$set"
        assert doc["_id"] != {"$gt": ""}
