"""The weekly run on a real scrapyd: ./scripts/schedule tick fires ``extensions`` at
Sunday 02:00 UTC and ``sites`` at 03:00 once extensions is done, from the deployed egg,
against the real CKAN catalog, the simulated world and the GitHub stand-in; the results
reach MongoDB and each job ends with its summary."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from pymongo import MongoClient

from ckancrawl.scrapyd.job_logs import outcome
from tests.fixtures.github import FAKE_TOKEN
from tests.fixtures.scrapyd import JOB_SETTINGS
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
def weekly_run(catalog_stack, ckan_catalog, scrapyd_server, deployed_version, tmp_path_factory):
    from tests.fixtures.scrapyd import run_schedule

    tmp = tmp_path_factory.mktemp("weekly")
    if ckan_catalog.search(rows=0)["count"]:
        catalog_stack.reset()  # other modules' datasets would become this run's work
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
        common = {**JOB_SETTINGS, "MONGODB_DATABASE": DATABASE, "MONGODB_SPILL_DIR": str(tmp / "spill")}
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
            done = run_schedule(scrapyd_server, "tick", "--now", TICKS[name], env=env)
            assert done.returncode == 0, done.stderr
            return done.stdout

        run = WeeklyRun(ticks={}, world=world)
        run.ticks["extensions due"] = tick("extensions due")
        run.ticks["sites due"] = tick("sites due")
        scrapyd_server.wait([run.extension_job])
        run.ticks["sites again"] = tick("sites again")
        scrapyd_server.wait([run.sites_job])
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


def test_a_run_is_fired_once_however_many_ticks_follow(weekly_run, scrapyd_server):
    assert weekly_run.ticks["after both"] == ""
    with scrapyd_server.client() as client:
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


def test_each_job_ends_with_its_summary_in_the_log(weekly_run, scrapyd_server):
    with scrapyd_server.client() as client:
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


def test_failures_lists_none_of_the_weekly_jobs(weekly_run, schedule_cli):
    done = schedule_cli("failures", "--all", "--json")
    verdicts = {row["job_id"]: row["verdict"] for row in json.loads(done.stdout)}
    assert verdicts[weekly_run.extension_job] == "ok"
    assert verdicts[weekly_run.sites_job] == "ok"


def test_the_github_token_reached_the_job_from_scrapyds_environment_only(weekly_run, scrapyd_server):
    # The stand-in accepts only FAKE_TOKEN: metrics were read, so the job had it.
    log = scrapyd_server.job_log_path("extensions", weekly_run.extension_job).read_text()
    assert FAKE_TOKEN not in log
    assert FAKE_TOKEN not in scrapyd_server.log()
    with scrapyd_server.client() as client:
        assert FAKE_TOKEN not in repr(client.list_jobs())
