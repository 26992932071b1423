"""``extensions`` end to end with the catalog writes on: ``extension`` datasets of the real
CKAN 2.11 catalog, metrics from the GitHub stand-in, package_patch of the metrics and a
row per extension in the extensions time series."""
from __future__ import annotations

import json

import pytest

from ckancrawl.catalog.series import EXTENSIONS
from tests.catalog_crawl import catalog_settings, series_rows
from tests.fixtures.github import FAKE_TOKEN, crawl_extensions
from tests.github_standin.client import GitHubStandIn

SERIES_DATASET = "cse-extensions-series"
METRICS = {
    "id": 301, "owner": "ckan", "name": "ckanext-cse-full", "stars": 190, "forks": 150, "archived": False,
    "license": "AGPL-3.0", "size": 2048, "pushed_at": "2024-05-01T10:00:00Z", "default_branch": "master",
    "languages": {"Python": 90000, "HTML": 7500, "JavaScript": 2500},
    "open_issues": 3, "open_pulls": 5, "discussions": 2, "has_discussions": True,
    "contributors": 57, "anonymous_contributors": 2,
    "releases": [
        {"tag": "v1.8.0", "created_at": "2023-01-10T00:00:00Z", "published_at": "2024-02-01T12:30:00Z"},
        {"tag": "v1.7.0", "created_at": "2022-06-01T00:00:00Z", "published_at": "2022-06-01T00:00:00Z"},
    ],
}
REPOS = [
    METRICS,
    {"id": 302, "owner": "ckan", "name": "ckanext-cse-huge", "stars": 9, "contributors_too_large": True},
    {"id": 303, "owner": "ckan", "name": "ckanext-cse-gone", "state": "deleted"},
]
DATASETS = [
    {"name": "cse-full", "url": "https://github.com/ckan/ckanext-cse-full", "stars": 100, "license": "AGPL-3.0"},
    {"name": "cse-huge", "url": "https://github.com/ckan/ckanext-cse-huge", "contributors_count": 40},
    {"name": "cse-gone", "url": "https://github.com/ckan/ckanext-cse-gone", "stars": 12, "contributors_count": 3},
]


@pytest.fixture(scope="module")
def crawled(ckan_catalog, tmp_path_factory):
    ckan_catalog.seed_extension_datasets([{"title": d["name"], **d} for d in DATASETS])
    before = {d["name"]: ckan_catalog.action("package_show", id=d["name"]) for d in DATASETS}
    tmp = tmp_path_factory.mktemp("cse")
    settings = {**catalog_settings(ckan_catalog, tmp), "DATASTORE_EXTENSIONS_DATASET": SERIES_DATASET}
    settings["ITEM_PIPELINES"] = json.dumps({"ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline": 400,
                                             "ckancrawl.pipelines.datastore_series.DatastoreSeriesPipeline": 500})
    env = {"CKAN_API_KEY": ckan_catalog.api_key}
    with GitHubStandIn(repos=REPOS, tokens=(FAKE_TOKEN,)) as github:
        first = crawl_extensions(github, tmp, args={"catalog": ckan_catalog.url}, settings=settings, env=env,
                                 name="first")
        assert first.returncode == 0, first.log[-3000:]
        modified = {d["name"]: ckan_catalog.action("package_show", id=d["name"])["metadata_modified"]
                    for d in DATASETS}
        again = crawl_extensions(github, tmp, settings=settings, env=env, name="again",
                                 args={"catalog": ckan_catalog.url, "run_timestamp": first.items[0]["run_timestamp"]})
        assert again.returncode == 0, again.log[-3000:]
    return first, again, before, modified


def test_the_metrics_reach_the_catalog(crawled, ckan_catalog):
    dataset = ckan_catalog.action("package_show", id="cse-full")
    assert {f: dataset.get(f) for f in ("stars", "forks_count", "open_issues", "contributors_count", "total_releases",
                                        "latest_release", "release_date", "discussions", "is_archived", "license",
                                        "repository_size", "last_update")} == {
        "stars": "190", "forks_count": "150", "open_issues": "3", "contributors_count": "59",
        "total_releases": "2", "latest_release": "v1.8.0", "release_date": "2024-02-01T12:30:00",
        "discussions": "2", "is_archived": "false", "license": "AGPL-3.0", "repository_size": "2048",
        "last_update": "2024-05-01T10:00:00",
    }
    assert json.loads(dataset["language_stats"]) == {"Python": 90.0, "HTML": 7.5, "JavaScript": 2.5}


def test_an_unknown_metric_keeps_the_catalogs_value(crawled, ckan_catalog):
    dataset = ckan_catalog.action("package_show", id="cse-huge")
    assert (dataset["stars"], dataset["contributors_count"]) == ("9", "40")


def test_a_repository_that_could_not_be_read_changes_nothing(crawled, ckan_catalog):
    _, _, before, _ = crawled
    after = ckan_catalog.action("package_show", id="cse-gone")
    assert after["metadata_modified"] == before["cse-gone"]["metadata_modified"]
    assert (after["stars"], after["contributors_count"]) == ("12", "3")


def test_each_extension_gets_a_row(crawled, ckan_catalog):
    first, *_ = crawled
    rows = {r["name"]: r for r in series_rows(ckan_catalog, EXTENSIONS, SERIES_DATASET)}
    full = rows["cse-full"]
    assert (full["repository"], full["stars"], full["contributors_count"], full["is_archived"],
            full["release_date"], full["last_update"]) == ("ckan/ckanext-cse-full", 190, 59, False,
                                                           "2024-02-01T12:30:00", "2024-05-01T10:00:00")
    assert rows["cse-huge"]["contributors_count"] is None
    assert rows["cse-gone"]["status"] == "failed" and rows["cse-gone"]["stars"] is None
    assert sorted(rows) == sorted(i["extension"] for i in first.items)


def test_a_rerun_writes_nothing_new(crawled, ckan_catalog):
    first, again, _, modified = crawled
    assert again.stats.get("catalog_sync/writes") is None
    assert again.stats["catalog_sync/unchanged"] == first.stats.get("catalog_sync/unchanged", 0) + \
        first.stats["catalog_sync/updated"]
    for name, stamp in modified.items():
        assert ckan_catalog.action("package_show", id=name)["metadata_modified"] == stamp
    assert len(series_rows(ckan_catalog, EXTENSIONS, SERIES_DATASET)) == len(first.items)


def test_neither_key_appears_in_the_logs(crawled, ckan_catalog):
    first, again, _, _ = crawled
    for run in (first, again):
        assert ckan_catalog.api_key not in run.log and FAKE_TOKEN not in run.log
        assert ckan_catalog.api_key not in json.dumps(run.stats, default=str)
