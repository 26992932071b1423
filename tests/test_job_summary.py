"""JobSummary: the summary of a crawl in its stats and log, the flag, the exit status of
``scrapy crawl``, and the webhook alert."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy.utils.test import get_crawler

from ckancrawl.extensions.job_summary import JSON_MARKER, JobSummary, describe, summarize
from tests.crawl import run_crawl
from tests.fixtures.scrapyd import JOB_SETTINGS
from tests.world import spec
from tests.world.launcher import start_world

SITES_STATS = {
    "sites/status/ok": 7,
    "sites/status/partial": 1,
    "sites/status/failed": 2,
    "sites/failure/dns": 1,
    "sites/failure/timeout": 1,
    "sites/errors/group_list/http error": 1,
    "mongodb/items": 10,
    "mongodb/documents_written": 10,
    "elapsed_time_seconds": 12.345,
    "log_count/WARNING": 3,
}


def test_sites_are_counted_by_outcome_and_failures_by_reason():
    summary = summarize(SITES_STATS, "sites", "finished", 0.5, job="abc")
    assert summary["sites"] == {
        "total": 10,
        "by_outcome": {"failed": 2, "ok": 7, "partial": 1},
        "failed": 2,
        "failed_by_reason": {"dns": 1, "timeout": 1},
        "failure_share": 0.2,
    }
    assert summary["storage"]["documents_written"] == 10
    assert (summary["job"], summary["elapsed_seconds"], summary["log"]) == ("abc", 12.3, {"errors": 0, "warnings": 3})
    assert summary["flagged"] is False and summary["flags"] == []


def test_a_failure_share_above_the_threshold_flags_the_run():
    assert summarize(SITES_STATS, "sites", "finished", 0.2)["flagged"] is False  # at the threshold
    summary = summarize(SITES_STATS, "sites", "finished", 0.1)
    assert summary["flags"] == ["2 of 10 sites failed (20% > 10%): dns 1, timeout 1"]


@pytest.mark.parametrize(
    ("stats", "reason", "flag"),
    [
        ({}, "finished", "no sites were measured"),
        ({"sites/status/ok": 3, "sites/catalog/error": "timeout: no complete answer after 15 s"}, "finished",
         "the catalog could not be read: timeout: no complete answer after 15 s"),
        ({"sites/status/ok": 3, "mongodb/items": 3, "mongodb/left_in_spill": 2}, "finished",
         "2 documents did not reach MongoDB (left in the spill file 2, refused 0)"),
        ({"sites/status/ok": 3}, "shutdown", "the crawl did not finish normally (finish reason: shutdown)"),
    ],
)
def test_runs_that_did_not_do_their_work_are_flagged(stats, reason, flag):
    assert flag in summarize(stats, "sites", reason, 0.5)["flags"]


def test_a_distributed_process_that_got_no_whole_portal_is_not_flagged():
    stats = {"distributed/run": "ckancrawl:harvest:w47", "harvest/datasets": 1544, "harvest/ranges_done": 9}
    summary = summarize(stats, "harvest", "finished", 0.5)
    assert summary["flagged"] is False and summary["portals"]["total"] == 0
    assert summary["harvest"]["id_ranges"] == 9 and summary["harvest"]["datasets"] == 1544
    assert summarize({"harvest/datasets": 0}, "harvest", "finished", 0.5)["flags"] == ["no portals were measured"]


def test_repositories_and_the_github_budget_of_an_extensions_run():
    stats = {
        "extensions/status/ok": 40, "extensions/status/failed": 2, "extensions/failure/not found": 2,
        "github/requests/graphql": 3, "github/requests/core": 42, "github/not_modified": 30,
        "extensions/graphql/cost": 3, "github/budget/core/remaining": 4958, "github/budget/graphql/remaining": 4997,
        "github/rate_limit/waits": 0,
    }
    summary = summarize(stats, "extensions", "finished", 0.5)
    assert summary["repositories"]["by_outcome"] == {"failed": 2, "ok": 40}
    assert summary["repositories"]["failed_by_reason"] == {"not found": 2}
    github = summary["github"]
    assert github["requests"] == {"core": 42, "graphql": 3}
    assert (github["graphql_points"], github["not_modified"]) == (3, 30)
    assert github["lowest_remaining"] == {"core": 4958, "graphql": 4997}
    assert "GitHub requests core 42, graphql 3, GraphQL points 3, lowest remaining core 4958, graphql 4997" in describe(summary)


def test_datasets_harvested_and_incomplete_portals_of_a_harvest():
    stats = {"harvest/portals/complete": 1, "harvest/portals/incomplete": 1, "harvest/datasets": 1234,
             "harvest/deleted": 5}
    summary = summarize(stats, "harvest", "finished", 0.5)
    assert summary["portals"]["by_outcome"] == {"complete": 1, "incomplete": 1}
    assert summary["harvest"]["datasets"] == 1234 and summary["harvest"]["deleted"] == 5
    assert summary["flagged"] is False  # half is not above half


def test_catalog_updates_and_time_series_rows_are_summarised_and_losses_flagged():
    stats = {
        "sites/status/ok": 10, "catalog_sync/items": 10, "catalog_sync/updated": 4, "catalog_sync/unchanged": 3,
        "catalog_sync/failed": 3, "catalog_sync/failed/validation": 2, "catalog_sync/failed/down": 1,
        "datastore/rows": 10, "datastore/rows_written": 8, "datastore/rows_pending": 2,
    }
    summary = summarize(stats, "sites", "finished", 0.25)
    assert summary["catalog"]["failed_by_reason"] == {"down": 1, "validation": 2}
    assert summary["series"] == {"rows": 10, "rows_written": 8, "rows_pending": 2, "table_problems": 0}
    assert summary["flags"] == [
        "3 of 10 catalog datasets could not be updated (30% > 25%): down 1, validation 2",
        "2 time series rows were not written and wait for the next run",
    ]
    assert "catalog datasets updated 4, unchanged 3, failed 3" in describe(summary)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"JOB_SUMMARY_FAILURE_THRESHOLD": 1.5}, "must be a share between 0 and 1"),
     ({"JOB_SUMMARY_ALERT": "sometimes"}, "use one of flagged, always, never")],
)
def test_wrong_settings_fail_at_start(settings, message):
    with pytest.raises(ValueError, match=message):
        JobSummary.from_crawler(get_crawler(settings_dict=settings))


# -- real crawls ---------------------------------------------------------------------------


class Webhook:
    """A local incoming-webhook endpoint; ``status`` is what it answers."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def webhook():
    hooks: list[Webhook] = []

    def start(status: int = 200) -> Webhook:
        hooks.append(Webhook(status))
        return hooks[-1]

    yield start
    for hook in hooks:
        hook.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    pool = spec.AddressPool("127.33.0.1")
    running = start_world([spec.ckan_portal(pool), spec.nothing_listening(pool), spec.nothing_listening(pool)],
                          tmp_path_factory.mktemp("summary-world"))
    yield running
    running.stop()


def crawl_sites(world, tmp_path: Path, env: dict[str, str], urls: list[str], **settings: str):
    urls_file = tmp_path / "urls.txt"
    urls_file.write_text("\n".join(urls) + "\n")
    all_settings = {"EXTENSIONS": JOB_SETTINGS["EXTENSIONS"], "ITEM_PIPELINES": "{}", **world.scrapy_settings(), **settings}
    return run_crawl("sites", tmp_path, args={"urls": str(urls_file)}, settings=all_settings, env=env, timeout=120)


def test_a_flagged_crawl_exits_3_with_its_summary_and_alerts_the_webhook(world, tmp_path, webhook):
    hook = webhook()
    secret_path = "/hooks/T0000/B1111/SECRETpath2222"
    result = crawl_sites(world, tmp_path, {"JOB_SUMMARY_WEBHOOK_URL": hook.base + secret_path},
                         [p.listed_url for p in world.portals], JOB_SUMMARY_EXIT_CODE="3")
    assert result.returncode == 3, result.log[-3000:]
    assert "ERROR: Job flagged: 2 of 3 sites failed (67% > 50%): connection refused 2" in result.log
    summary = json.loads(next(line for line in result.log.splitlines() if JSON_MARKER in line).split(JSON_MARKER, 1)[1])
    assert summary["sites"]["by_outcome"] == {"failed": 2, "ok": 1}
    assert result.stats_value("job_summary/flagged") == "True"
    [(path, body)] = hook.received
    assert path == secret_path
    assert body["summary"] == summary
    assert body["text"].startswith("sites | sites 3 (failed 2, ok 1)")
    assert f"Job summary sent to the webhook at 127.0.0.1:{hook.server.server_address[1]} (HTTP 200)" in result.log
    assert "SECRETpath" not in result.log


def test_a_healthy_crawl_exits_0_and_does_not_alert_by_default(world, tmp_path, webhook):
    hook = webhook()
    result = crawl_sites(world, tmp_path, {"JOB_SUMMARY_WEBHOOK_URL": hook.base + "/x"},
                         [world.portals[0].listed_url])
    assert result.returncode == 0, result.log[-3000:]
    assert "INFO: Job summary: sites | sites 1 (ok 1) | finish reason finished | ok" in result.log
    assert hook.received == []


def test_a_webhook_that_fails_is_logged_and_the_crawl_ends_normally(world, tmp_path, webhook):
    hook = webhook(status=500)
    result = crawl_sites(world, tmp_path, {"JOB_SUMMARY_WEBHOOK_URL": hook.base + "/hook"},
                         [world.portals[0].listed_url], JOB_SUMMARY_ALERT="always")
    assert result.returncode == 0, result.log[-3000:]
    assert len(hook.received) == 2  # tried twice
    assert "Job summary could not be sent to the webhook at 127.0.0.1" in result.log
    assert "HTTP 500" in result.log
