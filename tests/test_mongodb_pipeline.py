"""MongoPipeline against a real MongoDB-wire server (SecantusDB), through real crawls.

End-to-end tests run ``scrapy runspider`` on this file (its one spider yields
SiteSnapshot items) in a subprocess, the way a user runs a crawl, while the test
process watches the database and breaks the server. A few tests drive the pipeline
in-process to observe exactly when batches are written.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import scrapy
from scrapy.utils.test import get_crawler

from ckancrawl.items import SiteSnapshot
from tests.fixtures.disk import fill
from ckancrawl.pipelines.mongodb import (
    NOT_SET_MESSAGE,
    MongoPipeline,
    MongoUnavailable,
    redact_uri,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OLD_RUN = "2024-01-07T03:00:00Z"
NEW_RUN = "2024-01-14T03:00:00Z"
PIPELINES = {
    "ckancrawl.pipelines.mongo_keys.MongoKeysPipeline": 200,
    "ckancrawl.pipelines.mongodb.MongoPipeline": 300,
}


def snapshot(i: int, run_timestamp: str) -> SiteSnapshot:
    return SiteSnapshot(
        site=f"https://portal-{i}.example.org",
        run_timestamp=run_timestamp,
        source="url",
        status="ok",
        ckan_version="2.11.0",
        num_datasets=i,
        extensions=["scheming_datasets"],
        status_show={"ckan_version": "2.11.0", "ckan.site_url": "x", "$schema": [{"a.b": i}]},
    )


class SnapshotSpider(scrapy.Spider):
    """Yields ``count`` snapshots, optionally slowly or with a pause, and saves its stats."""

    name = "snapshots"

    def __init__(
        self,
        count: str = "10",
        run_timestamp: str = NEW_RUN,
        delay: str = "0",
        pause_after: str = "-1",
        pause: str = "0",
        huge: str = "",
        stats_file: str = "",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.count, self.run_timestamp = int(count), run_timestamp
        self.delay, self.pause_after, self.pause = float(delay), int(pause_after), float(pause)
        self.huge, self.stats_file = bool(huge), stats_file

    async def start(self):
        for i in range(self.count):
            if i == self.pause_after:
                await asyncio.sleep(self.pause)
            elif self.delay:
                await asyncio.sleep(self.delay)
            item = snapshot(i, self.run_timestamp)
            if self.huge and i == 0:
                item.site_title = "x" * (17 * 1024 * 1024)  # over MongoDB's 16 MB
            yield item
        if self.pause_after >= self.count:
            await asyncio.sleep(self.pause)

    def closed(self, reason: str) -> None:
        if self.stats_file:
            stats = self.crawler.stats.get_stats()
            Path(self.stats_file).write_text(json.dumps(stats, default=str))


@dataclass
class Crawl:
    returncode: int
    output: str
    stats: dict[str, Any]


class CrawlProcess:
    """``scrapy runspider`` of SnapshotSpider in a subprocess, in its own directory."""

    def __init__(self, workdir: Path, uri: str | None, settings: dict[str, Any], **args: Any):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stats_file = workdir / "stats.json"
        self.output_file = workdir / "output.txt"
        command = [sys.executable, "-m", "scrapy", "runspider", __file__]
        all_settings = {
            "ITEM_PIPELINES": PIPELINES,
            "LOG_LEVEL": "INFO",
            "TELNETCONSOLE_ENABLED": False,
            "MONGODB_SPILL_DIR": str(workdir / "spill"),
            **settings,
        }
        for name, value in all_settings.items():
            text = json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
            command += ["-s", f"{name}={text}"]
        for name, value in {"stats_file": self.stats_file, **args}.items():
            command += ["-a", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SCRAPY_"))}
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        if uri:
            env["MONGODB_URI"] = uri
        with self.output_file.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT
            )

    @property
    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> Crawl:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"crawl did not finish in {timeout} s:\n{self.output[-3000:]}")
        stats = json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {}
        return Crawl(self.process.returncode, self.output, stats)


@pytest.fixture
def crawl(tmp_path, mongo_db, mongodb_server):
    """Start a crawl storing into this test's database: crawl(**spider_args)."""
    runs = iter(range(1000))

    def start(*, uri: str | None = mongodb_server.uri, settings: dict | None = None, **args):
        settings = {"MONGODB_DATABASE": mongo_db.name, **(settings or {})}
        return CrawlProcess(tmp_path / f"crawl{next(runs)}", uri, settings, **args)

    return start


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)


def assert_ok(result: Crawl) -> None:
    assert result.returncode == 0, result.output[-3000:]
    assert "ERROR" not in result.output, result.output[-3000:]


# -- storing -------------------------------------------------------------------------


def test_crawl_stores_every_item_in_history_and_latest(crawl, mongo_db):
    result = crawl(count=25, settings={"MONGODB_BATCH_SIZE": 10}).wait()

    assert_ok(result)
    assert mongo_db["sites"].count_documents({}) == 25
    assert mongo_db["sites_latest"].count_documents({}) == 25
    stored = mongo_db["sites"].find_one({"site": "https://portal-3.example.org"}, {"_id": 0})
    assert stored["num_datasets"] == 3
    assert stored["status_show"] == {
        "ckan_version": "2.11.0", "ckan%2Esite_url": "x", "%24schema": [{"a%2Eb": 3}]
    }
    assert result.stats["mongodb/items"] == 25
    assert result.stats["mongodb/documents_written"] == 25
    assert result.stats["mongodb/latest_written"] == 25
    assert result.stats["mongodb/batches"] == 3


def test_history_is_unique_on_mongo_key(crawl, mongo_db):
    crawl(count=3).wait()
    indexes = mongo_db["sites"].index_information().values()
    assert {"key": [("site", 1), ("run_timestamp", 1)], "unique": True}.items() <= next(
        i for i in indexes if i.get("unique")
    ).items()


def test_rerun_of_the_same_run_does_not_duplicate(crawl, mongo_db):
    assert_ok(crawl(count=20, run_timestamp=OLD_RUN).wait())
    assert_ok(crawl(count=20, run_timestamp=OLD_RUN).wait())

    assert mongo_db["sites"].count_documents({}) == 20
    assert mongo_db["sites_latest"].count_documents({}) == 20


def test_latest_keeps_the_newest_run_even_when_an_older_run_comes_later(crawl, mongo_db):
    assert_ok(crawl(count=10, run_timestamp=NEW_RUN).wait())
    older = crawl(count=12, run_timestamp=OLD_RUN).wait()

    assert_ok(older)
    assert mongo_db["sites"].count_documents({}) == 22
    latest = {d["site"]: d["run_timestamp"] for d in mongo_db["sites_latest"].find()}
    assert len(latest) == 12
    assert all(latest[snapshot(i, NEW_RUN).site] == NEW_RUN for i in range(10))
    assert all(latest[snapshot(i, OLD_RUN).site] == OLD_RUN for i in range(10, 12))
    assert older.stats["mongodb/latest_kept_newer"] == 10


def test_a_newer_run_replaces_latest(crawl, mongo_db):
    assert_ok(crawl(count=5, run_timestamp=OLD_RUN).wait())
    assert_ok(crawl(count=5, run_timestamp=NEW_RUN).wait())

    assert {d["run_timestamp"] for d in mongo_db["sites_latest"].find()} == {NEW_RUN}


def test_a_document_mongodb_refuses_is_kept_aside_and_the_others_are_stored(crawl, mongo_db, tmp_path):
    result = crawl(count=5, huge=1).wait()

    assert result.returncode == 0
    assert mongo_db["sites"].count_documents({}) == 4
    assert result.stats["mongodb/rejected"] == 1
    assert "over MongoDB's 16 MB" in result.output
    (rejected,) = (tmp_path / "crawl0" / "spill").glob("*-rejected.jsonl")
    assert json.loads(rejected.read_text())["document"]["site"] == snapshot(0, NEW_RUN).site


# -- when batches are written -------------------------------------------------------


def test_a_full_batch_is_written_before_the_crawl_ends(crawl, mongo_db):
    run = crawl(
        count=12, pause_after=12, pause=30,
        settings={"MONGODB_BATCH_SIZE": 5, "MONGODB_FLUSH_INTERVAL": 600},
    )
    wait_for(lambda: mongo_db["sites"].count_documents({}) == 10, what="two full batches")
    time.sleep(0.5)
    assert mongo_db["sites"].count_documents({}) == 10  # the last 2 wait for a full batch
    run.process.terminate()  # Ctrl-C: a graceful stop flushes the rest
    assert run.wait().returncode == 0
    assert mongo_db["sites"].count_documents({}) == 12


def test_a_partial_batch_is_written_after_the_flush_interval(crawl, mongo_db):
    run = crawl(
        count=3, pause_after=3, pause=30,
        settings={"MONGODB_BATCH_SIZE": 100, "MONGODB_FLUSH_INTERVAL": 0.5},
    )
    wait_for(lambda: mongo_db["sites"].count_documents({}) == 3, timeout=20, what="time flush")
    run.process.terminate()
    assert run.wait().returncode == 0


def pipeline_with(settings: dict[str, Any]) -> MongoPipeline:
    crawler = get_crawler(SnapshotSpider, settings)
    crawler.spider = SnapshotSpider.from_crawler(crawler)
    return MongoPipeline.from_crawler(crawler)


def test_process_item_returns_only_when_its_full_batch_is_written(mongodb_server, mongo_db, tmp_path):
    settings = {
        "MONGODB_URI": mongodb_server.uri, "MONGODB_DATABASE": mongo_db.name,
        "MONGODB_BATCH_SIZE": 4, "MONGODB_FLUSH_INTERVAL": 600,
        "MONGODB_SPILL_DIR": str(tmp_path),
    }
    pipeline = pipeline_with(settings)
    counts = []

    async def run() -> None:
        await pipeline.open_spider()
        for i in range(6):
            await pipeline.process_item(snapshot(i, NEW_RUN))
            counts.append(await asyncio.to_thread(mongo_db["sites"].count_documents, {}))
        await pipeline.close_spider()

    asyncio.run(run())
    assert counts == [0, 0, 0, 4, 4, 4]
    assert mongo_db["sites"].count_documents({}) == 6


# -- failures --------------------------------------------------------------------------


def test_no_item_is_lost_when_mongodb_is_killed_and_restarted_mid_run(
    crawl, mongo_db, mongodb_server
):
    run = crawl(
        count=400, delay=0.01,
        settings={
            "MONGODB_BATCH_SIZE": 20, "MONGODB_FLUSH_INTERVAL": 0.5,
            "MONGODB_RETRY_TIMES": 8, "MONGODB_RETRY_BACKOFF": 0.2,
            "MONGODB_SERVER_SELECTION_TIMEOUT": 1,
        },
    )
    wait_for(lambda: mongo_db["sites"].count_documents({}) >= 60, what="first batches")
    mongodb_server.kill()
    time.sleep(2)
    mongodb_server.start()
    result = run.wait()

    assert result.returncode == 0, result.output[-3000:]
    assert mongo_db["sites"].count_documents({}) == 400
    assert mongo_db["sites_latest"].count_documents({}) == 400
    assert result.stats["mongodb/retries"] >= 1
    assert "mongodb/spilled" not in result.stats
    assert not list((run.workdir / "spill").glob("*"))


def test_an_outage_longer_than_the_retries_is_spilled_then_caught_up(
    crawl, mongo_db, mongodb_server
):
    run = crawl(
        count=300, delay=0.01,
        settings={
            "MONGODB_BATCH_SIZE": 20, "MONGODB_FLUSH_INTERVAL": 0.5,
            "MONGODB_RETRY_TIMES": 1, "MONGODB_RETRY_BACKOFF": 0.1,
            "MONGODB_SERVER_SELECTION_TIMEOUT": 0.5,
        },
    )
    wait_for(lambda: mongo_db["sites"].count_documents({}) >= 40, what="first batches")
    mongodb_server.kill()
    wait_for(lambda: list((run.workdir / "spill").glob("*.jsonl")), what="a spill file")
    time.sleep(1)
    mongodb_server.start()
    result = run.wait()

    assert result.returncode == 0, result.output[-3000:]
    assert mongo_db["sites"].count_documents({}) == 300
    assert result.stats["mongodb/spilled"] > 0
    assert result.stats["mongodb/unspilled"] == result.stats["mongodb/spilled"]
    assert "mongodb/left_in_spill" not in result.stats
    assert "MongoDB answers again" in result.output
    assert not list((run.workdir / "spill").glob("*"))


def test_mongodb_down_and_a_full_spill_disk_stop_the_crawl_and_lose_nothing(
    crawl, mongo_db, mongodb_server, small_disk
):
    fill(small_disk)  # the spill directory's disk is full (a real tmpfs: ENOSPC)
    run = crawl(
        count=400, delay=0.01,
        settings={
            "MONGODB_BATCH_SIZE": 20, "MONGODB_FLUSH_INTERVAL": 0.5,
            "MONGODB_RETRY_TIMES": 1, "MONGODB_RETRY_BACKOFF": 0.1,
            "MONGODB_SERVER_SELECTION_TIMEOUT": 0.5, "MONGODB_SPILL_DIR": str(small_disk / "spill"),
        },
    )
    wait_for(lambda: mongo_db["sites"].count_documents({}) >= 40, what="first batches")
    mongodb_server.kill()
    try:
        wait_for(lambda: "documents are held in memory" in run.output, what="the held documents")
    finally:
        mongodb_server.start()
    result = run.wait()

    assert "cannot be written (No space left on device): " in result.output
    assert "The crawl stops now so that no more work piles up" in result.output
    assert "Closing spider (storage_unavailable)" in result.output
    assert result.stats["mongodb/held"] > 0 and "mongodb/lost" not in result.stats
    assert "stored the %d documents held in memory" % result.stats["mongodb/held"] in result.output
    assert result.stats["mongodb/items"] < 400  # it stopped early: start() was read no further
    assert mongo_db["sites"].count_documents({}) == result.stats["mongodb/items"]  # none of them lost
    assert "Traceback" not in result.output


def test_documents_nowhere_to_go_at_close_are_counted_and_reported_as_lost(mongodb_server, mongo_db, caplog):
    from ckancrawl.pipelines.mongodb import MongoWriter, Pending, Target

    # /dev/full: every write to it fails with ENOSPC, as on a full disk.
    writer = MongoWriter(mongodb_server.uri, mongo_db.name, spill_path=Path("/dev/full"), retry_times=0,
                         server_selection_timeout=0.3)
    writer.connect()
    target = Target.of(SiteSnapshot)
    batch = [Pending(target, {"site": f"https://p{i}.example.org", "run_timestamp": NEW_RUN}) for i in range(3)]
    mongodb_server.kill()
    try:
        first, later = writer.write(batch[:2]), writer.write(batch[2:])
        assert (first.held, later.held) == (2, 1) and "No space left on device" in writer.storage_error
        done = writer.finish()
    finally:
        mongodb_server.start()
        writer.close()
    assert (done.lost, done.spilled) == (3, 0)
    assert "3 documents were not stored" in caplog.text and "run the crawl again" in caplog.text
    assert "sites site='https://p0.example.org'" in caplog.text


def test_mongodb_down_at_close_leaves_a_spill_file_that_replay_writes(
    crawl, mongo_db, mongodb_server
):
    run = crawl(
        count=30, pause_after=30, pause=2,
        settings={
            "MONGODB_BATCH_SIZE": 100, "MONGODB_FLUSH_INTERVAL": 600,
            "MONGODB_RETRY_TIMES": 1, "MONGODB_RETRY_BACKOFF": 0.1,
            "MONGODB_SERVER_SELECTION_TIMEOUT": 0.5,
        },
    )
    wait_for(lambda: "Storing items in MongoDB" in run.output, what="the pipeline to open")
    mongodb_server.stop()
    try:
        result = run.wait()
    finally:
        mongodb_server.start()

    assert result.returncode == 0
    assert result.stats["mongodb/left_in_spill"] == 30
    match = re.search(r"saved in (\S+\.jsonl)\. Nothing is lost", result.output)
    assert match, result.output[-3000:]
    assert "python -m ckancrawl.pipelines.mongodb replay" in result.output
    assert mongo_db["sites"].count_documents({}) == 0

    replay = subprocess.run(
        [sys.executable, "-m", "ckancrawl.pipelines.mongodb", "replay", match[1],
         "--uri", mongodb_server.uri, "--database", mongo_db.name],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert "30 documents written" in replay.stdout
    assert mongo_db["sites"].count_documents({}) == 30
    assert mongo_db["sites_latest"].count_documents({}) == 30


def test_unreachable_mongodb_stops_the_crawl_with_a_clear_error(crawl, mongo_db):
    from tests.fixtures.mongo import free_port

    uri = f"mongodb://crawler:Pa55-word@127.0.0.1:{free_port()}/?directConnection=true"
    started = time.monotonic()
    result = crawl(uri=uri, count=3, settings={"MONGODB_SERVER_SELECTION_TIMEOUT": 1}).wait()

    assert result.returncode == 1
    assert time.monotonic() - started < 20
    assert "Cannot reach MongoDB at mongodb://crawler:***@127.0.0.1" in result.output
    assert "Start MongoDB or point MONGODB_URI at a running server" in result.output
    assert "Pa55-word" not in result.output


def test_an_unwritable_spill_directory_stops_the_crawl_before_any_item(crawl, mongo_db, tmp_path):
    blocker = tmp_path / "a-file"  # a path under a regular file cannot be written, even by root
    blocker.write_text("")
    result = crawl(count=3, settings={"MONGODB_SPILL_DIR": str(blocker / "spill")}).wait()
    assert result.returncode == 1
    assert f"MONGODB_SPILL_DIR '{blocker / 'spill'}' cannot be written" in result.output
    assert "Give a writable MONGODB_SPILL_DIR" in result.output
    assert mongo_db.list_collection_names() == []


def test_without_mongodb_uri_the_pipeline_steps_aside_and_feeds_still_work(crawl):
    run = crawl(uri=None, count=4, settings={"FEEDS": {"items.jsonl": {"format": "jsonlines"}}})
    result = run.wait()

    assert_ok(result)
    assert result.output.count(NOT_SET_MESSAGE) == 1
    assert len((run.workdir / "items.jsonl").read_text().splitlines()) == 4
    assert not any(k.startswith("mongodb/") for k in result.stats)


@pytest.fixture
def mongo_user(mongo_db):
    name, password = f"crawler_{uuid.uuid4().hex[:8]}", "s3cr:et@pa/ss%"
    admin = mongo_db.client.admin
    admin.command("createUser", name, pwd=password, roles=[{"role": "root", "db": "admin"}])
    yield name, password
    admin.command("dropUser", name)


def test_uri_password_never_appears_in_logs_or_stats(crawl, mongo_db, mongodb_server, mongo_user):
    from urllib.parse import quote

    name, password = mongo_user
    quoted = quote(password, safe="")
    uri = f"mongodb://{name}:{quoted}@127.0.0.1:{mongodb_server.port}/?directConnection=true"
    good = crawl(uri=uri, count=5, settings={"LOG_LEVEL": "DEBUG"}).wait()
    bad = crawl(uri=uri.replace(quoted, "wrong-" + quoted), count=5).wait()

    assert_ok(good)
    assert mongo_db["sites"].count_documents({}) == 5
    assert f"mongodb://{name}:***@127.0.0.1" in good.output
    assert bad.returncode == 1
    assert "refused the connection" in bad.output
    assert "Check the user and password in MONGODB_URI" in bad.output
    for result in (good, bad):
        for secret in (password, quoted, "s3cr"):
            assert secret not in result.output
            assert secret not in json.dumps(result.stats)


@pytest.mark.parametrize(
    "uri, shown",
    [
        ("mongodb://h:1/db", "mongodb://h:1/db"),
        ("mongodb://u:p@h:1/db", "mongodb://u:***@h:1/db"),
        ("mongodb+srv://u:p%40ss@c.example.net/", "mongodb+srv://u:***@c.example.net/"),
        ("mongodb://u:p@ss@h", "mongodb://u:***@h"),
        ("mongodb://u@h/?authMechanism=MONGODB-X509", "mongodb://u@h/?authMechanism=MONGODB-X509"),
        ("mongodb://h/?tlsCertificateKeyFilePassword=x&w=1", "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1"),
    ],
)
def test_redact_uri_hides_passwords(uri, shown):
    assert redact_uri(uri) == shown


def test_open_fails_with_mongo_unavailable_when_nothing_listens(tmp_path):
    from tests.fixtures.mongo import free_port

    settings = {
        "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        "MONGODB_SERVER_SELECTION_TIMEOUT": 0.3,
        "MONGODB_SPILL_DIR": str(tmp_path),
    }
    pipeline = pipeline_with(settings)
    with pytest.raises(MongoUnavailable, match="Cannot reach MongoDB"):
        asyncio.run(pipeline.open_spider())


def test_an_invalid_uri_is_reported_without_its_password(tmp_path):
    settings = {"MONGODB_URI": "mongodb://bob:se/cr@t@127.0.0.1:1/", "MONGODB_SPILL_DIR": str(tmp_path)}
    pipeline = pipeline_with(settings)
    with pytest.raises(MongoUnavailable, match="MONGODB_URI is not valid") as error:
        asyncio.run(pipeline.open_spider())
    assert "se/cr" not in str(error.value)
