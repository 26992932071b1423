"""The weekly run on a real scrapyd: ./scripts/schedule tick fires ``extensions`` at
Sunday 02:00 UTC and ``sites`` at 03:00 once extensions is done, from the deployed egg,
against the real CKAN catalog, the simulated world and the GitHub stand-in; the results
reach MongoDB and the catalog (package_patch and the datastore time series), and each
job ends with its summary.

The jobs run on a scrapyd node whose environment holds the catalog's API key, as a
production node's would (docs/scrapyd.md); it runs the versions deployed to the
session's scrapyd (shared eggs_dir)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from pymongo import MongoClient

from ckancrawl.catalog.series import EXTENSIONS as EXTENSIONS_SERIES
from ckancrawl.catalog.series import SITES as SITES_SERIES
from ckancrawl.scrapyd.job_logs import outcome
from tests.catalog_crawl import catalog_settings, series_rows
from tests.fixtures.github import FAKE_TOKEN
from tests.fixtures.scrapyd import JOB_SETTINGS, ScrapydServer, run_schedule
from tests.github_standin.client import GitHubStandIn
from tests.world import spec
from tests.world.launcher import start_world

DATABASE = "scrapyd_weekly_test"
REPOS = [
    {"id": 11, "owner": "ckan", "name": "ckanext-alpha", "contributors": 3, "stars": 40},
    {"id": 12, "owner": "ckan", "name": "ckanext-beta", "contributors": 1, "stars": 7},
    {"id": 13, "owner": "ckan", "name": "ckanext-gone", "state": "deleted"},
]
EXTENSION_DATASETS = [
    {"name": "ext-alpha", "title": "Alpha", "url": "https://github.com/ckan/ckanext-alpha"},
    {"name": "ext-beta", "title": "Beta", "url": "https://github.com/ckan/ckanext-beta"},
    {"name": "ext-gone", "title": "Gone", "url": "https://github.com/ckan/ckanext-gone"},
]
TICKS = {"extensions due": "2026-11-29T02:01:00Z", "sites due": "2026-11-29T03:01:00Z",
         "sites again": "2026-11-29T03:06:00Z", "after both": "2026-11-29T03:11:00Z"}


def toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{name} = {json.dumps(value)}" for name, value in values.items()) + " }"


@dataclass
class WeeklyRun:
    ticks: dict[str, str]
    world: object
    extension_job: str = "extensions-20261129T0200Z"
    sites_job: str = "sites-20261129T0300Z"


@pytest.fixture(scope="module")
def clean_catalog(catalog_stack, ckan_catalog):
    if ckan_catalog.search(rows=0, include_private=True)["count"]:
        catalog_stack.reset()  # other modules' datasets would become this run's work
    return ckan_catalog


@pytest.fixture(scope="module")
def node(scrapyd_server, deployed_version, clean_catalog, tmp_path_factory):
    """A scrapyd node with the crawl's secrets in its environment, the catalog key included."""
    server = ScrapydServer(
        tmp_path_factory.mktemp("catalog-node"), {**scrapyd_server.env, "CKAN_API_KEY": clean_catalog.api_key},
        eggs_dir=scrapyd_server.eggs_dir,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def weekly_run(clean_catalog, node, tmp_path_factory):
    ckan_catalog = clean_catalog
    tmp = tmp_path_factory.mktemp("weekly")
    pool = spec.AddressPool("127.31.0.1")
    portals = [spec.ckan_portal(pool, num_datasets=50 + i) for i in range(3)]
    portals += [spec.nothing_listening(pool), spec.not_ckan(pool)]
    world = start_world(portals, tmp / "world")
    github = GitHubStandIn(repos=REPOS, tokens=(FAKE_TOKEN,)).start()
    try:
        ckan_catalog.seed_site_datasets(
            [{"name": f"site-{i}", "title": f"Site {i}", "url": p.listed_url} for i, p in enumerate(world.portals)]
        )
        ckan_catalog.seed_extension_datasets(EXTENSION_DATASETS)
        common = {**JOB_SETTINGS, **catalog_settings(ckan_catalog, tmp), "MONGODB_DATABASE": DATABASE}
        extensions_settings = {
            **common, "GITHUB_API_URL": github.url, "GITHUB_GRAPHQL_URL": github.graphql_url,
            "GITHUB_CACHE_DIR": str(tmp / "github-cache"), "GITHUB_SECONDARY_BACKOFF": "0.2",
        }
        sites_settings = {**common, **world.scrapy_settings()}
        schedule = tmp / "schedule.toml"
        schedule.write_text(
            '[[job]]\nname = "extensions"\nspider = "extensions"\nweekday = "sunday"\ntime = "02:00"\n'
            f"args = {toml_table({'catalog': ckan_catalog.url})}\nsettings = {toml_table(extensions_settings)}\n\n"
            '[[job]]\nname = "sites"\nspider = "sites"\nweekday = "sunday"\ntime = "03:00"\nafter = "extensions"\n'
            f"args = {toml_table({'catalog': ckan_catalog.url})}\nsettings = {toml_table(sites_settings)}\n",
            encoding="utf-8",
        )
        env = {"CKANCRAWL_SCHEDULE_FILE": str(schedule), "CKANCRAWL_SCHEDULE_STATE": str(tmp / "state.json")}

        def tick(name: str) -> str:
            done = run_schedule(node, "tick", "--now", TICKS[name], env=env)
            assert done.returncode == 0, done.stderr
            return done.stdout

        run = WeeklyRun(ticks={}, world=world)
        run.ticks["extensions due"] = tick("extensions due")
        run.ticks["sites due"] = tick("sites due")
        node.wait([run.extension_job])
        run.ticks["sites again"] = tick("sites again")
        node.wait([run.sites_job])
        run.ticks["after both"] = tick("after both")
        yield run
    finally:
        github.stop()
        world.stop()


@pytest.fixture(scope="module")
def weekly_db(mongodb_server):
    client = MongoClient(mongodb_server.uri)
    yield client[DATABASE]
    client.close()


def test_extensions_is_fired_at_its_sunday_slot(weekly_run):
    assert weekly_run.ticks["extensions due"].split(" ", 1)[1].strip() == (
        "fired extensions-20261129T0200Z (extensions)"
    )


def test_sites_waits_while_extensions_is_not_done(weekly_run):
    line = weekly_run.ticks["sites due"].strip()
    assert line.startswith("2026-11-29T03:01:00Z waiting sites-20261129T0300Z: extensions-20261129T0200Z is ")
    assert line.endswith(("pending", "running"))


def test_sites_is_fired_once_extensions_has_finished(weekly_run):
    assert weekly_run.ticks["sites again"].split(" ", 1)[1].strip() == "fired sites-20261129T0300Z (sites)"


def test_a_run_is_fired_once_however_many_ticks_follow(weekly_run, node):
    assert weekly_run.ticks["after both"] == ""
    with node.client() as client:
        ids = [job.id for job in client.list_jobs().all()]
    assert ids.count(weekly_run.extension_job) == 1
    assert ids.count(weekly_run.sites_job) == 1


def test_repository_metrics_reach_mongodb(weekly_run, weekly_db):
    latest = {doc["extension"]: doc for doc in weekly_db.extensions_latest.find()}
    assert set(latest) == {"ext-alpha", "ext-beta", "ext-gone"}
    assert (latest["ext-alpha"]["status"], latest["ext-alpha"]["stars"], latest["ext-alpha"]["contributors_count"]) == (
        "ok", 40, 3,
    )
    assert latest["ext-gone"]["status"] == "failed"
    assert latest["ext-gone"]["failure"].startswith("not found")


def test_site_snapshots_reach_mongodb_with_the_truth(weekly_run, weekly_db):
    latest = {doc["listed_url"]: doc for doc in weekly_db.sites_latest.find()}
    assert len(latest) == len(weekly_run.world.portals)
    for portal in weekly_run.world.portals:
        assert portal.truth.mismatches(latest[portal.listed_url]) == [], portal.name


def test_each_job_ends_with_its_summary_in_the_log(weekly_run, node):
    with node.client() as client:
        jobs = client.list_jobs()
        extensions = outcome(weekly_run.extension_job, "extensions", client.job_log(jobs.find(weekly_run.extension_job)))
        sites = outcome(weekly_run.sites_job, "sites", client.job_log(jobs.find(weekly_run.sites_job)))
    assert extensions.verdict == "ok", extensions.detail
    assert extensions.summary["job"] == weekly_run.extension_job
    assert extensions.summary["repositories"]["by_outcome"] == {"failed": 1, "ok": 2}
    assert extensions.summary["repositories"]["failed_by_reason"] == {"not found": 1}
    assert extensions.summary["github"]["requests"]["graphql"] >= 1
    assert sites.verdict == "ok", sites.detail
    assert sites.summary["sites"]["total"] == 5
    assert sites.summary["sites"]["failed_by_reason"] == {"connection refused": 1, "not a ckan site": 1}
    assert sites.summary["storage"]["documents_written"] >= 5


def test_failures_lists_none_of_the_weekly_jobs(weekly_run, node):
    done = run_schedule(node, "failures", "--all", "--json")
    verdicts = {row["job_id"]: row["verdict"] for row in json.loads(done.stdout)}
    assert verdicts[weekly_run.extension_job] == "ok"
    assert verdicts[weekly_run.sites_job] == "ok"


def test_the_github_token_reached_the_job_from_scrapyds_environment_only(weekly_run, node):
    # The stand-in accepts only FAKE_TOKEN: metrics were read, so the job had it.
    log = node.job_log_path("extensions", weekly_run.extension_job).read_text()
    assert FAKE_TOKEN not in log
    assert FAKE_TOKEN not in node.log()
    with node.client() as client:
        assert FAKE_TOKEN not in repr(client.list_jobs())


def test_the_measurements_reach_the_catalog_datasets(weekly_run, clean_catalog):
    alpha = clean_catalog.action("package_show", id="ext-alpha")
    assert (int(alpha["stars"]), int(alpha["contributors_count"])) == (40, 3)
    healthy = clean_catalog.action("package_show", id="site-0")
    assert int(healthy["num_datasets"]) == 50
    dead = clean_catalog.action("package_show", id="site-3")
    assert not dead.get("num_datasets")  # unknown is never written as 0


def test_each_run_appends_its_rows_to_the_time_series(weekly_run, clean_catalog):
    extensions = series_rows(clean_catalog, EXTENSIONS_SERIES, EXTENSIONS_SERIES.default_dataset)
    assert sorted(row["name"] for row in extensions) == ["ext-alpha", "ext-beta", "ext-gone"]
    sites = series_rows(clean_catalog, SITES_SERIES, SITES_SERIES.default_dataset)
    assert sorted(row["name"] for row in sites) == [f"site-{i}" for i in range(5)]
    assert {row["num_datasets"] for row in sites if row["name"] == "site-1"} == {51}


def test_the_summary_counts_the_catalog_writes(weekly_run, node):
    with node.client() as client:
        job = client.list_jobs().find(weekly_run.sites_job)
        summary = outcome(job.id, job.spider, client.job_log(job)).summary
    # The three measured portals, and the site that is not CKAN: its home page's
    # language fills the catalog's empty language field (site profiles fill blanks).
    assert summary["catalog"]["updated"] == 4 and summary["catalog"]["failed"] == 0
    assert summary["series"]["rows_written"] == 5 and summary["series"]["rows_pending"] == 0


def test_the_catalog_key_reached_the_jobs_from_the_environment_only(weekly_run, node, clean_catalog):
    for spider, job_id in (("extensions", weekly_run.extension_job), ("sites", weekly_run.sites_job)):
        assert clean_catalog.api_key not in node.job_log_path(spider, job_id).read_text()
    assert clean_catalog.api_key not in node.log()
