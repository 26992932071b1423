"""The datastore time series (ckancrawl.catalog.datastore, .replay, the pipeline) on the
real CKAN 2.11 test catalog with its datastore."""
from __future__ import annotations

import dataclasses
import json
import logging
import uuid

import pytest

from ckancrawl.catalog.__main__ import main as catalog_command
from ckancrawl.catalog.client import CatalogClient
from ckancrawl.catalog.datastore import SeriesTable, TableProblem
from ckancrawl.catalog.series import SITES
from ckancrawl.items import SiteSnapshot
from tests.catalog_crawl import catalog_settings, series_rows
from tests.crawl import run_crawl
from tests.world import spec

RUN = "2026-11-22T03:00:00Z"


@pytest.fixture
def client(ckan_catalog):
    made = CatalogClient(ckan_catalog.url, ckan_catalog.api_key, retry_backoff=0.05)
    yield made
    made.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def snapshot(site: str, run: str = RUN, **values) -> SiteSnapshot:
    return SiteSnapshot(site=site, run_timestamp=run, source="catalog", catalog_dataset=site, status="ok", **values)


def row(site: str, run: str = RUN, **values) -> dict:
    return SITES.row(dataclasses.asdict(snapshot(site, run, **values)))


def test_a_missing_table_is_created_with_the_declared_columns(ckan_catalog, client):
    dataset = unique("ds-new")
    table = SeriesTable(client, SITES, dataset, SITES.default_resource, create=True, owner_org=ckan_catalog.org)
    resource_id = table.ensure()
    fields = ckan_catalog.action("datastore_search", resource_id=resource_id, limit=0)["fields"]
    assert [(f["id"], f["type"]) for f in fields if f["id"] != "_id"] == [(c.id, c.type) for c in SITES.columns]
    assert ckan_catalog.action("package_show", id=dataset)["resources"][0]["name"] == "CKAN Sites Dynamic Metadata"


def test_the_key_makes_a_row_written_twice_one_row(ckan_catalog, client):
    table = SeriesTable(client, SITES, unique("ds-key"), SITES.default_resource, create=True,
                        owner_org=ckan_catalog.org)
    table.upsert([row("a", num_datasets=1), row("b", num_datasets=2)])
    table.upsert([row("a", num_datasets=10), row("a", run="2026-11-29T03:00:00Z", num_datasets=11)])
    found = sorted((r["name"], r["run_timestamp"], r["num_datasets"]) for r in table.rows())
    assert found == [("a", "2026-11-22T03:00:00", 10), ("a", "2026-11-29T03:00:00", 11),
                     ("b", "2026-11-22T03:00:00", 2)]


def test_a_missing_table_is_a_clear_problem_unless_creation_is_allowed(client):
    table = SeriesTable(client, SITES, unique("ds-absent"), "Series")
    with pytest.raises(TableProblem) as problem:
        table.ensure()
    assert "the dataset does not exist" in str(problem.value)
    assert "set DATASTORE_SERIES_CREATE=True" in str(problem.value)


def test_a_table_with_other_columns_is_reported_before_anything_is_written(ckan_catalog, client):
    dataset = unique("ds-other")
    ckan_catalog.create_dataset({"name": dataset, "title": dataset})
    ckan_catalog.action("datastore_create", resource={"package_id": dataset, "name": SITES.default_resource},
                        fields=[{"id": "name", "type": "text"}, {"id": "run_timestamp", "type": "text"},
                                {"id": "datasets", "type": "int"}], primary_key=["name", "run_timestamp"])
    table = SeriesTable(client, SITES, dataset, SITES.default_resource)
    with pytest.raises(TableProblem) as problem:
        table.upsert([row("a", num_datasets=1)])
    message = str(problem.value)
    assert "other columns than the sites series" in message and "nothing was written" in message
    assert "missing columns: catalog_dataset, status, url" in message
    assert "other types: run_timestamp is text, ours is timestamp" in message
    resource_id = ckan_catalog.action("package_show", id=dataset)["resources"][0]["id"]
    assert ckan_catalog.action("datastore_search", resource_id=resource_id, limit=0)["total"] == 0
    assert "calls/datastore_upsert" not in client.counts


def test_columns_we_do_not_write_only_warn(ckan_catalog, client, caplog):
    dataset = unique("ds-extra")
    ckan_catalog.create_dataset({"name": dataset, "title": dataset})
    fields = SITES.datastore_fields() + [{"id": "curator_note", "type": "text"}]
    ckan_catalog.action("datastore_create", resource={"package_id": dataset, "name": "Series"}, fields=fields,
                        primary_key=["name", "run_timestamp"])
    with caplog.at_level(logging.WARNING, logger="ckancrawl.catalog.datastore"):
        assert SeriesTable(client, SITES, dataset, "Series").upsert([row("a")]) == 1
    assert "columns we do not write: curator_note" in caplog.text


def test_the_resource_is_found_by_name(ckan_catalog, client):
    dataset = unique("ds-named")
    ckan_catalog.create_dataset({"name": dataset, "title": dataset, "resources": [
        {"name": "Documentation", "url": "https://example.org/doc.pdf"}]})
    made = SeriesTable(client, SITES, dataset, "Our series", create=True).ensure()
    assert SeriesTable(client, SITES, dataset, "Our series").ensure() == made
    names = [r["name"] for r in ckan_catalog.action("package_show", id=dataset)["resources"]]
    assert names == ["Documentation", "Our series"]


def test_the_replay_command_writes_only_the_rows_the_datastore_lacks(ckan_catalog, client, mongo_db, mongodb_server,
                                                                     monkeypatch, capsys):
    dataset = unique("ds-replay")
    documents = [dataclasses.asdict(snapshot(f"site-{i}", run, num_datasets=i)) for i in range(5)
                 for run in (RUN, "2026-11-29T03:00:00Z")]
    mongo_db.sites.insert_many([dict(d) for d in documents])
    table = SeriesTable(client, SITES, dataset, SITES.default_resource, create=True, owner_org=ckan_catalog.org)
    table.upsert([SITES.row(d) for d in documents if d["run_timestamp"] == RUN][:2])
    monkeypatch.setenv("CKAN_API_KEY", ckan_catalog.api_key)
    status = catalog_command(["replay", "sites", "--catalog", ckan_catalog.url,
                              "-s", f"MONGODB_URI={mongodb_server.uri}", "-s", f"MONGODB_DATABASE={mongo_db.name}",
                              "-s", f"DATASTORE_SITES_DATASET={dataset}"])
    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        "sites run 2026-11-22T03:00:00Z: 5 in MongoDB, 2 in the datastore, 3 rows written",
        "sites run 2026-11-29T03:00:00Z: 5 in MongoDB, 0 in the datastore, 5 rows written",
    ]
    assert sorted((r["name"], r["num_datasets"]) for r in table.rows() if r["run_timestamp"] == "2026-11-22T03:00:00") \
        == [(f"site-{i}", i) for i in range(5)]


def test_the_sync_command_updates_datasets_from_the_newest_snapshots(ckan_catalog, mongo_db, mongodb_server,
                                                                     monkeypatch, capsys):
    name = unique("ds-sync")
    ckan_catalog.create_dataset({"name": name, "title": name, "num_datasets": 1}, "site")
    mongo_db.sites_latest.insert_one(dataclasses.asdict(snapshot(name, num_datasets=8, num_groups=None)))
    monkeypatch.setenv("CKAN_API_KEY", ckan_catalog.api_key)
    assert catalog_command(["sync", "sites", "--catalog", ckan_catalog.url, "-s", f"MONGODB_URI={mongodb_server.uri}",
                            "-s", f"MONGODB_DATABASE={mongo_db.name}"]) == 0
    assert capsys.readouterr().out.strip() == "sites: 1 updated"
    dataset = ckan_catalog.action("package_show", id=name)
    assert (dataset["num_datasets"], dataset.get("num_groups")) == ("8", None)


# -- in a crawl -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_portal(tmp_path_factory):
    from tests.world.launcher import start_world

    world = start_world([spec.ckan_portal(spec.AddressPool("127.32.0.1"), num_datasets=33)],
                        tmp_path_factory.mktemp("ds-world"))
    yield world
    world.stop()


def crawl_one(world, ckan_catalog, directory, run_timestamp=None, **settings):
    all_settings = {**world.scrapy_settings(), **catalog_settings(ckan_catalog, directory),
                    "CATALOG_URL": ckan_catalog.url, "CATALOG_SYNC_ENABLED": "False", "ITEM_PIPELINES": json.dumps(
                        {"ckancrawl.pipelines.datastore_series.DatastoreSeriesPipeline": 500}), **settings}
    args = {"url": world.portals[0].listed_url, **({"run_timestamp": run_timestamp} if run_timestamp else {})}
    result = run_crawl("sites", directory, args=args, settings=all_settings, env={"CKAN_API_KEY": ckan_catalog.api_key})
    assert result.returncode == 0, result.log[-3000:]
    return result


def test_rows_a_crawl_could_not_write_are_written_by_the_next(one_portal, ckan_catalog, tmp_path):
    dataset = unique("ds-later")
    # Last week's run (two runs within one second would share their key).
    first = crawl_one(one_portal, ckan_catalog, tmp_path, "2026-11-15T03:00:00Z", DATASTORE_SITES_DATASET=dataset,
                      DATASTORE_SERIES_CREATE="False")
    assert f"cannot write the sites time series to resource 'CKAN Sites Dynamic Metadata' of dataset '{dataset}'" \
        in first.log
    assert "1 row of the sites series not written (cannot write the sites time series" in first.log
    assert len(list((tmp_path / "pending").glob("sites-*.jsonl"))) == 1
    second = crawl_one(one_portal, ckan_catalog, tmp_path, DATASTORE_SITES_DATASET=dataset)
    assert second.stats_value("datastore/rows_from_pending") == "1"
    assert second.stats_value("datastore/rows_written") == "2"
    runs = sorted(r["run_timestamp"] for r in series_rows(ckan_catalog, SITES, dataset))
    assert runs == sorted(item["run_timestamp"].rstrip("Z") for item in first.items + second.items)
    assert list((tmp_path / "pending").glob("*")) == []


def test_a_crawl_reports_a_table_with_other_columns_and_keeps_its_rows(one_portal, ckan_catalog, tmp_path):
    dataset = unique("ds-mismatch")
    ckan_catalog.create_dataset({"name": dataset, "title": dataset})
    ckan_catalog.action("datastore_create", resource={"package_id": dataset, "name": SITES.default_resource},
                        fields=[{"id": "name", "type": "text"}, {"id": "run_timestamp", "type": "timestamp"}],
                        primary_key=["name", "run_timestamp"])
    result = crawl_one(one_portal, ckan_catalog, tmp_path, DATASTORE_SITES_DATASET=dataset)
    assert "has other columns than the sites series (missing columns: catalog_dataset, status" in result.log
    assert result.stats_value("datastore/rows_written") is None
    assert result.stats_value("datastore/rows_pending") == "1"
    # No MongoDB in this crawl: the pending file is what keeps the row.
    pending = list((tmp_path / "pending").glob("sites-*.jsonl"))
    assert [json.loads(line)["num_datasets"] for line in pending[0].read_text().splitlines()] == [33]
