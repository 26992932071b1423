"""Resource facts in the real chain: the ``harvest`` spider against a simulated portal,
the resource facts pipeline, the key codec and the raw metadata repository in MongoDB."""
from __future__ import annotations

import json

import pytest

from ckancrawl.pipelines.mongo_keys import decode_keys
from tests.resource_crawl import HANDLER
from tests.test_harvest_world import harvest, portal_of

PIPELINES = json.dumps({
    "ckancrawl.pipelines.resource_facts.ResourceFactsPipeline": 100,
    "ckancrawl.pipelines.mongo_keys.MongoKeysPipeline": 200,
    "ckancrawl.pipelines.mongodb.MongoPipeline": 300,
})


@pytest.fixture
def db(mongo_db, mongodb_server):
    mongo_db.client_uri = mongodb_server.uri
    return mongo_db


def test_harvested_datasets_get_resource_facts_that_stay_equal_on_a_rerun(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.36.0.1", count=16)
    world = start_world([portal])
    settings = {"ITEM_PIPELINES": PIPELINES, "DOWNLOAD_HANDLERS": json.dumps({"http": HANDLER, "https": HANDLER}),
                "RESOURCE_FACTS": "head"}
    first = harvest(tmp_path / "first", world, {"portal": world.portals[0].listed_url}, db, **settings)
    assert len(first.datasets) == 16
    for item in first.datasets:
        assert len(item["resource_facts"]) == len(item["raw"]["resources"])
    facts = [f for item in first.datasets for f in item["resource_facts"]]
    by_url = {f["url"]: f for f in facts}
    # The world resolves only its portals' names: files.example.org is not found, and fast.
    plain = next(f for f in facts if f["url"].endswith("/resource-0.csv"))
    assert plain["error"].startswith("dns: ") and (plain["format"], plain["format_source"]) == ("CSV", "extension")
    odd = by_url["http://files.example.org/Jahresbericht 2020 (final).PDF"]
    assert odd["url_normalized"] == "http://files.example.org/Jahresbericht%202020%20(final).PDF"
    assert odd["format"] == "PDF"
    encoded = by_url["http://files.example.org/data%20set/r%C3%A9sum%C3%A9.csv?x=1%2B2"]
    assert encoded["url_normalized"] == encoded["url"]
    assert by_url["ftp://ftp.example.org/pub/data.zip"]["error"].startswith("bad url: the ftp: scheme")
    declared = {f["declared_format"]: f["formats"]["declared"] for f in facts if f["declared_format"]}
    meant = {".pdf": "PDF", "PDF": "PDF", "application/pdf": "PDF", "Excel": "XLS", "xisx": "XLSX", "CSV ": "CSV",
             "text/csv; charset=utf-8": "CSV", "CSV": "CSV", "JSON": "JSON", "XLSX": "XLSX"}
    assert declared == {value: meant[value] for value in declared}
    assert len(set(declared) - {"CSV", "JSON", "XLSX"}) >= 3  # odd spellings were met

    stored = {doc["dataset_id"]: decode_keys(doc["resource_facts"]) for doc in db.raw_datasets.find()}
    assert {item["dataset_id"]: item["resource_facts"] for item in first.datasets} == stored

    again = harvest(tmp_path / "again", world, {"portal": world.portals[0].listed_url, "since": "all"}, db, **settings)
    assert again.stat("mongodb/raw_unchanged") == 16  # same content, same facts: nothing rewritten
