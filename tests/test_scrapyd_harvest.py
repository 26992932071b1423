"""Harvests on scrapyd: on demand with ./scripts/schedule harvest, weekly from a schedule
file, a dependency that overruns, and cancelling a running harvest."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
from pymongo import MongoClient

from tests.fixtures.scrapyd import JOB_SETTINGS, run_schedule
from tests.world import spec
from tests.world.datasets import DatasetsSpec
from tests.world.launcher import start_world

ON_DEMAND_DB = "scrapyd_harvest_on_demand"
WEEKLY_DB = "scrapyd_harvest_weekly"


def toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{name} = {json.dumps(value)}" for name, value in values.items()) + " }"


@dataclass
class Harvests:
    world: object
    on_demand: str = ""
    ticks: dict[str, str] = field(default_factory=dict)
    cancel: str = ""
    #: Seconds from the cancel to the job's end.
    cancel_to_end: float = 0.0
    failures: object = None


@pytest.fixture(scope="module")
def harvests(scrapyd_server, deployed_version, mongodb_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harvests")
    pool = spec.AddressPool("127.32.0.1")
    fast = spec.dataset_portal(pool, DatasetsSpec(count=30, seed=11))
    weekly = spec.dataset_portal(pool, DatasetsSpec(count=20, seed=12))
    # About 20 pages of 1 s: still running when cancelled, and paging it to the end
    # would take far longer than a cancelled harvest may.
    slow = spec.dataset_portal(pool, DatasetsSpec(count=400, seed=13), latency_ms=1000)
    world = start_world([fast, weekly, slow], tmp / "world")
    fast_url, weekly_url, slow_url = (p.listed_url for p in world.portals)
    try:
        settings = {**JOB_SETTINGS, **world.scrapy_settings(), "MONGODB_SPILL_DIR": str(tmp / "spill")}
        run = Harvests(world)

        # On demand: the command line, with a per-job setting.
        done = run_schedule(
            scrapyd_server, "harvest", fast_url,
            *[arg for name, value in {**settings, "MONGODB_DATABASE": ON_DEMAND_DB}.items() for arg in ("-s", f"{name}={value}")],
        )
        assert done.returncode == 0, done.stderr
        run.on_demand = done.stdout.strip()

        # Weekly: "slow" at Sunday 02:00 and "weekly" at 03:00 after it; slow overruns.
        schedule = tmp / "schedule.toml"
        schedule.write_text(
            '[[job]]\nname = "slow"\nspider = "harvest"\nweekday = "sunday"\ntime = "02:00"\n'
            f"args = {toml_table({'portal': slow_url})}\nsettings = {toml_table({**settings, 'MONGODB_DATABASE': 'scrapyd_harvest_slow', 'HARVEST_PAGE_SIZE': '20'})}\n\n"
            '[[job]]\nname = "weekly"\nspider = "harvest"\nweekday = "sunday"\ntime = "03:00"\nafter = "slow"\n'
            f"args = {toml_table({'portal': weekly_url})}\nsettings = {toml_table({**settings, 'MONGODB_DATABASE': WEEKLY_DB})}\n",
            encoding="utf-8",
        )
        env = {"CKANCRAWL_SCHEDULE_FILE": str(schedule), "CKANCRAWL_SCHEDULE_STATE": str(tmp / "state.json")}
        for name, now in (("slow due", "2026-12-06T02:01:00Z"), ("weekly due", "2026-12-06T03:01:00Z"),
                          ("slow overran", "2026-12-06T09:05:00Z")):
            done = run_schedule(scrapyd_server, "tick", "--now", now, env=env)
            assert done.returncode == 0, done.stderr
            run.ticks[name] = done.stdout

        # Cancel the overrunning harvest once it is paging (its first datasets are stored).
        with scrapyd_server.client() as client, MongoClient(mongodb_server.uri) as mongo:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    client.status("slow-20261206T0200Z") == "running"
                    and mongo["scrapyd_harvest_slow"].raw_datasets.estimated_document_count()):
                time.sleep(0.2)
        cancelled_at = time.monotonic()
        done = run_schedule(scrapyd_server, "cancel", "slow-20261206T0200Z")
        run.cancel = done.stdout + done.stderr
        with scrapyd_server.client() as client:
            while client.status("slow-20261206T0200Z") != "finished" and time.monotonic() < cancelled_at + 60:
                time.sleep(0.1)
        run.cancel_to_end = time.monotonic() - cancelled_at
        scrapyd_server.wait([run.on_demand, "slow-20261206T0200Z", "weekly-20261206T0300Z"])
        run.failures = run_schedule(scrapyd_server, "failures", "--json")
        yield run
    finally:
        world.stop()


@pytest.fixture(scope="module")
def mongo(mongodb_server):
    client = MongoClient(mongodb_server.uri)
    yield client
    client.close()


def test_an_on_demand_harvest_stores_every_dataset_of_the_portal(harvests, mongo):
    stored = mongo[ON_DEMAND_DB].raw_datasets
    assert stored.count_documents({}) == 30
    run = mongo[ON_DEMAND_DB].harvest_runs.find_one()
    assert (run["complete"], run["datasets"]) == (True, 30)


def test_a_weekly_harvest_waits_for_the_entry_it_runs_after(harvests):
    assert harvests.ticks["slow due"].split(" ", 1)[1].strip() == "fired slow-20261206T0200Z (slow)"
    assert "waiting weekly-20261206T0300Z: slow-20261206T0200Z is " in harvests.ticks["weekly due"]


def test_a_dependency_that_overruns_does_not_hold_the_next_run_forever(harvests, mongo):
    lines = harvests.ticks["slow overran"].strip().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "fired weekly-20261206T0300Z (weekly)",
        "started although slow is still busy after 6 h: weekly-20261206T0300Z",
    ]
    assert mongo[WEEKLY_DB].raw_datasets.count_documents({}) == 20


def test_a_running_harvest_can_be_cancelled(harvests):
    assert harvests.cancel.strip() == "slow-20261206T0200Z: cancelled (was running)"


def test_a_cancelled_harvest_stops_paging_at_once_and_records_an_incomplete_run(harvests, mongo):
    # The page in flight (1 s) ends, nothing more is asked: well before the ~20 s left.
    assert harvests.cancel_to_end < 8, harvests.cancel_to_end
    run = mongo["scrapyd_harvest_slow"].harvest_runs.find_one()
    assert run["complete"] is False and run["deleted_ids"] is None
    assert any(error.startswith("stopped: ") for error in run["errors"]), run["errors"]
    stored = mongo["scrapyd_harvest_slow"].raw_datasets.count_documents({})
    assert 0 < stored == run["datasets"] < 400


def test_failures_shows_the_cancelled_harvest_and_only_it(harvests):
    assert harvests.failures.returncode == 1
    failed = {row["job_id"]: row for row in json.loads(harvests.failures.stdout)}
    assert harvests.on_demand not in failed and "weekly-20261206T0300Z" not in failed
    slow = failed["slow-20261206T0200Z"]
    assert slow["verdict"] == "flagged"
    assert "the crawl did not finish normally (finish reason: shutdown)" in slow["detail"]


def test_a_secret_given_as_a_per_job_setting_never_reaches_scrapyd(scrapyd_server, deployed_version):
    done = run_schedule(scrapyd_server, "run", "sites", "-s", "GITHUB_TOKEN=ghp_should_not_travel")
    assert done.returncode == 1
    assert "looks like a secret: set it in the environment of the scrapyd process" in done.stderr
    assert "ghp_should_not_travel" not in scrapyd_server.log()
