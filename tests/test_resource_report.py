"""The report on the raw metadata repository: files on several portals, per-portal totals."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gridfs
import pytest

from ckancrawl.content_hash import canonical_json
from ckancrawl.pipelines.mongo_keys import encode_keys
from ckancrawl.resources.report import FactsReport, render_text
from tests.crawl import PROJECT_ROOT
from tests.resource_crawl import dataset, run_resource_crawl
from tests.resource_server.client import RunningResourceServer
from tests.resource_server.content import Content


def fact(md5, size, fmt, url="http://x/f"):
    return {"md5": md5, "size": size, "format": fmt, "url": url}


def doc(portal, dataset_id, *facts, deleted=False):
    return {"portal": portal, "dataset_id": dataset_id, "deleted": deleted, "raw": {}, "resource_facts": list(facts)}


def test_files_on_two_portals_are_found_and_portals_summed(mongo_db):
    mongo_db.raw_datasets.insert_many([
        doc("http://a", "1", fact("m1", 10, "CSV", "http://a/1.csv"), fact(None, None, None), fact("m2", 3 * 2**31, "ZIP")),
        doc("http://a", "2", fact("m1", 10, "CSV", "http://a/2.csv")),
        doc("http://b", "3", fact("m1", 10, "CSV", "http://b/x.csv"), fact("m3", 7, "PDF")),
        doc("http://c", "4", fact("m3", 7, "PDF"), deleted=True),
        doc("http://c", "5", fact("d41d8cd98f00b204e9800998ecf8427e", 0, "TXT")),
        doc("http://d", "6", fact("d41d8cd98f00b204e9800998ecf8427e", 0, "TXT")),
    ])
    report = FactsReport(mongo_db)
    shared = report.shared_files()
    assert [f.as_dict() for f in shared] == [{
        "md5": "m1", "size": 10, "formats": ["CSV"], "resources": 3,
        "portals": [{"portal": "http://a", "resources": 2, "url": "http://a/1.csv"},
                    {"portal": "http://b", "resources": 1, "url": "http://b/x.csv"}],
    }]
    portals = {p.portal: p.as_dict() for p in report.portals()}
    assert portals["http://a"] == {"portal": "http://a", "datasets": 2, "resources": 4, "sized": 3,
                                   "total_size": 20 + 3 * 2**31, "hashed": 3, "distinct_md5": 2,
                                   "formats": {"CSV": 2, "ZIP": 1, "unknown": 1}}
    assert portals["http://c"]["datasets"] == 1  # the deleted one is left out
    assert "m3" not in {f.md5 for f in shared}


def test_deleted_datasets_count_when_asked(mongo_db):
    mongo_db.raw_datasets.insert_many([
        doc("http://b", "3", fact("m3", 7, "PDF")),
        doc("http://c", "4", fact("m3", 7, "PDF"), deleted=True),
    ])
    assert FactsReport(mongo_db).shared_files() == []
    assert [f.md5 for f in FactsReport(mongo_db, include_deleted=True).shared_files()] == ["m3"]
    assert [p.portal for p in FactsReport(mongo_db, portals=["http://b"]).portals()] == ["http://b"]


def test_facts_kept_in_gridfs_are_read_from_there(mongo_db):
    content = canonical_json({"raw": encode_keys({"a.b": 1}), "resource_facts": [fact("m9", 5, "CSV", "http://big/1")]})
    file_id = gridfs.GridFS(mongo_db, collection="raw_datasets_files").put(content, _id="big|1")
    mongo_db.raw_datasets.insert_many([
        {"portal": "http://big", "dataset_id": "1", "deleted": False, "raw": None, "resource_facts": None,
         "stored_in": {"gridfs": "raw_datasets_files", "file_id": file_id, "bytes": len(content)}},
        doc("http://small", "2", fact("m9", 5, "CSV", "http://small/1")),
    ])
    report = FactsReport(mongo_db)
    [shared] = report.shared_files()
    assert (shared.md5, sorted(shared.portals)) == ("m9", ["http://big", "http://small"])
    big = next(p for p in report.portals() if p.portal == "http://big")
    assert (big.resources, big.total_size, big.formats) == (1, 5, {"CSV": 1})
    assert "m9" in render_text([shared], report.portals(), limit=10)


@pytest.fixture
def resource_server():
    with RunningResourceServer() as running:
        yield running


def test_harvested_facts_stored_in_mongodb_show_the_same_file_on_two_portals(
    resource_server: RunningResourceServer, mongodb_server, mongo_db, tmp_path: Path
):
    s = resource_server
    datasets = [
        dataset(0, s.url("/shared.csv", size=200_000, seed=5, type="text/csv"),
                s.url("/a.pdf", size=1000, prefix=b"%PDF-1.4\n"), portal="http://portal-a.example"),
        dataset(1, s.url("/mirror/copy.csv", size=200_000, seed=5, type="text/csv"), portal="http://portal-b.example"),
    ]
    crawl = run_resource_crawl(tmp_path, datasets, {
        "RESOURCE_FACTS": "full",
        "ITEM_PIPELINES": json.dumps({
            "ckancrawl.pipelines.resource_facts.ResourceFactsPipeline": 100,
            "ckancrawl.pipelines.mongo_keys.MongoKeysPipeline": 200,
            "ckancrawl.pipelines.mongodb.MongoPipeline": 300,
        }),
        "MONGODB_URI": mongodb_server.uri,
        "MONGODB_DATABASE": mongo_db.name,
        "MONGODB_SPILL_DIR": str(tmp_path / "spill"),
    })
    assert crawl.returncode == 0, crawl.log[-3000:]
    assert mongo_db.raw_datasets.count_documents({}) == 2
    command = [sys.executable, "-m", "ckancrawl.resources.report", "--mongodb-uri", mongodb_server.uri,
               "--database", mongo_db.name]
    answer = subprocess.run([*command, "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    report = json.loads(answer.stdout)
    [shared] = report["shared_files"]
    assert shared["md5"] == Content(200_000, seed=5).md5()
    assert (shared["size"], shared["formats"]) == (200_000, ["CSV"])
    assert [p["portal"] for p in shared["portals"]] == ["http://portal-a.example", "http://portal-b.example"]
    portal_a = next(p for p in report["portals"] if p["portal"] == "http://portal-a.example")
    assert (portal_a["resources"], portal_a["total_size"], portal_a["formats"]) == (2, 201_000, {"CSV": 1, "PDF": 1})
    text = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "Files published on more than one portal (same MD5): 1 file, 2 resources" in text
    assert shared["md5"] in text and "http://portal-b.example" in text


def test_the_report_says_when_mongodb_cannot_be_read():
    answer = subprocess.run(
        [sys.executable, "-m", "ckancrawl.resources.report", "--mongodb-uri",
         "mongodb://user:s3cret@127.0.0.1:1/", "--timeout", "0.3"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert answer.returncode == 2
    assert "could not be read" in answer.stderr and "s3cret" not in answer.stderr
