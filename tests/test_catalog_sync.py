"""Dataset sync (ckancrawl.catalog.sync) against the real CKAN 2.11 test catalog, with
the catalog's scheming ``site`` type: what is read, what is written, what is restored."""
from __future__ import annotations

import logging
import threading
import uuid

import pytest

from ckancrawl.catalog.client import CatalogClient
from ckancrawl.catalog.fields import SITE_FIELDS, CatalogField, Kind, known_values
from ckancrawl.catalog.sync import FAILED, UNCHANGED, UPDATED, WOULD_UPDATE, DatasetSync
from ckancrawl.items import SiteSnapshot
from itemadapter import ItemAdapter

SEEDED = {"num_datasets": 12, "num_organizations": 3, "num_groups": 2, "ckan_version": "2.9.5",
          "extensions": ["stats", "datastore"]}


@pytest.fixture
def site(ckan_catalog):
    """A fresh site dataset with SEEDED values; returns its name."""
    name = f"sync-{uuid.uuid4().hex[:10]}"
    ckan_catalog.create_dataset({"name": name, "title": name, "url": "https://portal.example.org", **SEEDED}, "site")
    return name


def make_client(ckan_catalog, api_key=None, **options) -> CatalogClient:
    options = {"retry_backoff": 0.05, "retry_backoff_max": 0.2, "timeout": 10, **options}
    return CatalogClient(ckan_catalog.url, api_key or ckan_catalog.api_key, **options)


def stored(ckan_catalog, name):
    dataset = ckan_catalog.action("package_show", id=name)
    return {field: dataset.get(field) for field in SEEDED}


def test_an_unchanged_dataset_is_read_and_not_written(ckan_catalog, site):
    client = make_client(ckan_catalog)
    # Scheming gives "12" back; the extensions come in another order: still the same.
    known = {**SEEDED, "extensions": ["datastore", "stats"]}
    result = DatasetSync(client).sync(site, known, SITE_FIELDS)
    assert result.outcome == UNCHANGED
    assert client.counts["calls/package_show"] == 1
    assert "calls/package_patch" not in client.counts and "writes" not in client.counts


def test_only_the_changed_fields_are_patched(ckan_catalog, site):
    client = make_client(ckan_catalog)
    before = ckan_catalog.action("package_show", id=site)
    result = DatasetSync(client).sync(site, {**SEEDED, "num_datasets": 13, "ckan_version": "2.10.4"}, SITE_FIELDS)
    assert result.outcome == UPDATED
    assert result.changes == {"num_datasets": ("12", 13), "ckan_version": ("2.9.5", "2.10.4")}
    assert client.counts["calls/package_patch"] == 1
    after = ckan_catalog.action("package_show", id=site)
    assert (after["num_datasets"], after["ckan_version"]) == ("13", "2.10.4")
    untouched = ("num_groups", "num_organizations", "extensions", "title", "url", "notes")
    assert {f: after.get(f) for f in untouched} == {f: before.get(f) for f in untouched}


def test_a_known_value_is_not_replaced_by_an_unknown_one(ckan_catalog, site):
    snapshot = SiteSnapshot(site=site, run_timestamp="2026-11-22T03:00:00Z", source="catalog", catalog_dataset=site,
                            num_datasets=20, num_organizations=None, num_groups=None, ckan_version=None,
                            extensions=None, errors={"organization_list": "http error: HTTP 500"})
    result = DatasetSync(make_client(ckan_catalog)).sync(site, known_values(ItemAdapter(snapshot), SITE_FIELDS),
                                                         SITE_FIELDS)
    assert result.outcome == UPDATED
    assert stored(ckan_catalog, site) == {**SEEDED, "num_datasets": "20", "num_organizations": "3",
                                          "num_groups": "2"}


def test_dry_run_logs_the_diff_and_writes_nothing(ckan_catalog, site, caplog):
    client = make_client(ckan_catalog)
    with caplog.at_level(logging.INFO, logger="ckancrawl.catalog.sync"):
        result = DatasetSync(client, dry_run=True).sync(site, {**SEEDED, "num_groups": 9}, SITE_FIELDS)
    assert result.outcome == WOULD_UPDATE
    assert f"Catalog dataset {site} (dry run, nothing written): would set num_groups '2' -> 9" in caplog.text
    assert "writes" not in client.counts
    assert stored(ckan_catalog, site)["num_groups"] == "2"


def test_a_key_without_permission_is_reported_clearly(ckan_catalog, site):
    user = f"reader{uuid.uuid4().hex[:8]}"
    ckan_catalog.action("user_create", name=user, email=f"{user}@example.org", password="Reader-pass-12345")
    token = ckan_catalog.action("api_token_create", user=user, name="crawler")["token"]
    result = DatasetSync(make_client(ckan_catalog, api_key=token)).sync(site, {"num_groups": 9}, SITE_FIELDS)
    assert (result.outcome, result.failure_kind, result.restored) == (FAILED, "not authorized", True)
    assert result.reason.startswith("not authorized: the API key in CKAN_API_KEY may not package_patch dataset")
    assert f"User {user} not authorized to edit package" in result.reason
    assert token not in result.reason
    assert stored(ckan_catalog, site)["num_groups"] == "2"


def test_a_missing_dataset_is_reported_clearly(ckan_catalog):
    client = make_client(ckan_catalog)
    result = DatasetSync(client).sync("no-such-site-dataset", {"num_groups": 1}, SITE_FIELDS)
    assert (result.outcome, result.failure_kind) == (FAILED, "not found")
    assert result.reason.startswith("not found: the catalog has no dataset no-such-site-dataset")
    assert client.counts["retries"] == 0


def test_a_failure_in_the_middle_of_a_multi_field_patch_leaves_the_dataset_as_it_was(ckan_catalog, solr_standin,
                                                                                       site):
    # CKAN writes the fields, then fails to index them: every attempt of the patch fails.
    client = make_client(ckan_catalog, retry_times=2)
    solr_standin.inject_fault("update", status=503, count=3)
    change = {"num_datasets": 99, "num_groups": 98, "ckan_version": "3.0.0", "extensions": ["new"]}
    result = DatasetSync(client).sync(site, change, SITE_FIELDS)
    assert (result.outcome, result.failure_kind, result.restored) == (FAILED, "server error", True)
    assert "search index update failed" in result.reason
    assert client.counts["calls/package_patch"] == 1 and client.counts["retries"] == 2
    assert stored(ckan_catalog, site) == {**SEEDED, "num_datasets": "12", "num_organizations": "3", "num_groups": "2"}


def test_a_transient_failure_is_retried(ckan_catalog, solr_standin, site):
    client = make_client(ckan_catalog)
    solr_standin.inject_fault("update", status=503, count=1)
    result = DatasetSync(client).sync(site, {"num_groups": 7, "ckan_version": "2.11.0"}, SITE_FIELDS)
    assert result.outcome == UPDATED
    assert client.counts["retries"] == 1
    assert stored(ckan_catalog, site)["num_groups"] == "7"


def test_a_patch_that_times_out_is_retried_until_it_answers(ckan_catalog, solr_standin, site):
    # The first patch stalls in CKAN (its index update takes 2.5 s) past the 1 s timeout.
    client = make_client(ckan_catalog, timeout=1, retry_times=6, retry_backoff=0.3, retry_backoff_max=0.6)
    solr_standin.inject_fault("update", status=0, count=1, delay=2.5)
    result = DatasetSync(client).sync(site, {"num_groups": 5}, SITE_FIELDS)
    assert result.outcome == UPDATED, result.reason
    assert client.counts["retries"] >= 1
    assert stored(ckan_catalog, site)["num_groups"] == "5"


def test_a_value_the_catalog_does_not_keep_restores_the_others(ckan_catalog, site):
    # A field missing from the catalog's schema: CKAN accepts the patch and drops it.
    fields = {**SITE_FIELDS, "forks_count": CatalogField("forks_count", Kind.INTEGER)}
    client = make_client(ckan_catalog)
    result = DatasetSync(client).sync(site, {"num_datasets": 50, "num_groups": 40, "forks_count": 3}, fields)
    assert (result.outcome, result.failure_kind, result.restored) == (FAILED, "not kept", True)
    assert result.reason.startswith("not kept: the catalog did not keep forks_count (wrote 3, reads None)")
    assert client.counts["calls/package_patch"] == 2  # the patch and the restore
    assert stored(ckan_catalog, site) == {**SEEDED, "num_datasets": "12", "num_organizations": "3", "num_groups": "2"}


def test_no_more_than_the_allowed_writes_run_at_once(ckan_catalog, solr_standin):
    names = [f"sync-par-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    ckan_catalog.create_datasets([{"name": n, "title": n, **SEEDED} for n in names], "site")
    solr_standin.inject_fault("update", status=0, count=6, delay=0.3)  # slow writes overlap if allowed
    client = TrackingClient(ckan_catalog.url, ckan_catalog.api_key, max_concurrent_writes=2)
    sync = DatasetSync(client)
    threads = [threading.Thread(target=sync.sync, args=(n, {"num_groups": 30}, SITE_FIELDS)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.counts["calls/package_patch"] == 6
    assert client.most_writes_at_once == 2
    assert {stored(ckan_catalog, n)["num_groups"] for n in names} == {"30"}


class TrackingClient(CatalogClient):
    """Counts the write calls in flight (between the write gate and the answer)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._flight = threading.Lock()
        self.writes_in_flight = 0
        self.most_writes_at_once = 0

    def _call_with_retries(self, action, data, idempotent):
        if action != "package_patch":
            return super()._call_with_retries(action, data, idempotent)
        with self._flight:
            self.writes_in_flight += 1
            self.most_writes_at_once = max(self.most_writes_at_once, self.writes_in_flight)
        try:
            return super()._call_with_retries(action, data, idempotent)
        finally:
            with self._flight:
                self.writes_in_flight -= 1


def test_a_value_the_search_index_refuses_is_not_retried(ckan_catalog):
    # Written as plain text, an instant with an offset reaches Solr as "+00:00" (CKAN
    # re-formats *_date fields), which Solr refuses: the patch is rolled back.
    name = f"sync-ext-{uuid.uuid4().hex[:8]}"
    ckan_catalog.create_dataset({"name": name, "title": name, "stars": 1}, "extension")
    fields = {"release_date": CatalogField("release_date", Kind.TEXT), "stars": CatalogField("stars", Kind.INTEGER)}
    client = make_client(ckan_catalog)
    result = DatasetSync(client).sync(name, {"release_date": "2024-02-01T12:30:00+00:00", "stars": 2}, fields)
    assert (result.outcome, result.failure_kind, result.restored) == (FAILED, "invalid", True)
    assert "Invalid Date String" in result.reason
    assert client.counts["retries"] == 0
    dataset = ckan_catalog.action("package_show", id=name)
    assert (dataset["stars"], dataset.get("release_date")) == ("1", None)


def test_many_datasets_are_read_with_one_search(ckan_catalog):
    names = [f"sync-many-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    made = ckan_catalog.create_datasets([{"name": n, "title": n, **SEEDED} for n in names], "site")
    client = make_client(ckan_catalog)
    refs = [made[0]["id"], made[1]["id"], names[2], "no-such-dataset"]  # names[3] is not asked for
    found = DatasetSync(client).read_many(refs)
    assert set(found) == {made[0]["id"], made[1]["id"], names[2]}
    assert {d["name"] for d in found.values()} == set(names[:3])
    assert found[names[2]]["num_datasets"] == "12"
    assert client.counts["calls/package_search"] == 1 and "calls/package_show" not in client.counts


def test_a_dataset_read_in_a_batch_is_not_read_again(ckan_catalog, site):
    client = make_client(ckan_catalog)
    sync = DatasetSync(client)
    dataset = sync.read_many([site])[site]
    result = sync.sync(site, {"num_groups": 12}, SITE_FIELDS, dataset=dataset)
    assert result.outcome == UPDATED
    assert "calls/package_show" not in client.counts
    assert stored(ckan_catalog, site)["num_groups"] == "12"
