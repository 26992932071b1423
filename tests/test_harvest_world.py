"""The ``harvest`` spider against simulated portals with real-world shapes and faults.

Each portal serves generated datasets (tests/world/datasets.py) whose ids and content
are known in advance, so every test can say exactly which datasets a correct harvest
yields and stores.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckancrawl.content_hash import content_hash
from ckancrawl.pipelines.mongo_keys import decode_keys
from tests.crawl import CrawlResult, run_crawl
from tests.world import spec
from tests.world.datasets import DatasetsSpec, dataset_id, make_dataset


class Harvest:
    """One crawl's output split into dataset items and run items."""

    def __init__(self, result: CrawlResult) -> None:
        self.result = result
        self.runs = [item for item in result.items if "run_timestamp" in item]
        self.datasets = [item for item in result.items if "dataset_id" in item]

    @property
    def run(self) -> dict[str, Any]:
        assert len(self.runs) == 1, self.runs
        return self.runs[0]

    @property
    def ids(self) -> list[str]:
        return [item["dataset_id"] for item in self.datasets]

    def stat(self, key: str) -> int:
        value = self.result.stats_value(key)
        return int(value) if value is not None else 0


def harvest(tmp_path: Path, world: Any, args: dict[str, str], db: Any = None, **settings: Any) -> Harvest:
    env = {}
    # No test here waits for a timeout: a long one keeps a busy machine from failing them.
    # Resource facts without network (the generated resource URLs lead nowhere).
    all_settings = {**world.scrapy_settings(), "DOWNLOAD_TIMEOUT": 20, "RESOURCE_FACTS": "none"}
    if db is not None:
        env["MONGODB_URI"] = db.client_uri
        all_settings.update(MONGODB_DATABASE=db.name, MONGODB_FLUSH_INTERVAL=0.2,
                            MONGODB_SPILL_DIR=str(tmp_path / "spill"))
    all_settings.update(settings)
    result = run_crawl("harvest", tmp_path, args=args, settings=all_settings, env=env)
    assert result.returncode == 0, result.log[-4000:]
    assert "Traceback" not in result.log, result.log[-4000:]
    return Harvest(result)


@pytest.fixture
def db(mongo_db, mongodb_server):
    mongo_db.client_uri = mongodb_server.uri
    return mongo_db


def ids_of(datasets: DatasetsSpec, indices) -> set[str]:
    return {dataset_id(datasets, i) for i in indices}


def portal_of(preset: str, first_address: str, **kw: Any) -> spec.PortalSpec:
    return spec.HARVEST_PRESETS[preset](spec.AddressPool(first_address), **kw)


# -- shapes and storage ---------------------------------------------------------------------


def test_every_dataset_is_stored_once_as_the_portal_sent_it(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.30.0.1")
    world = start_world([portal])
    datasets = portal.hosts[0].ckan.datasets
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, db)
    assert sorted(done.ids) == sorted(ids_of(datasets, range(datasets.count)))
    assert db.raw_datasets.count_documents({}) == datasets.count
    for index in range(datasets.count):
        stored = db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, index)})
        original = make_dataset(datasets, index)
        assert decode_keys(stored["raw"]) == original
        assert stored["content_hash"] == content_hash(original)
        assert stored["portal"] == world.portals[0].listed_url.rstrip("/")
        assert stored["deleted"] is False and stored["first_harvested_at"] == stored["harvested_at"]


def test_keys_mongodb_rejects_are_encoded_and_never_merged(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.30.1.1", count=10)
    world = start_world([portal])
    harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, db)
    odd = db.raw_datasets.find_one({"name": "dataset-000003"})["raw"]  # shape "odd_keys"
    assert {"dcat%2Etheme", "%24schema", "título", "名前", "%", "a%252Eb", "nul%00key"} <= set(odd)
    assert odd["nested"] == {"a%2Eb": {"%24c": [{"d%2Ee": 1}]}}


def test_resources_keep_odd_formats_and_percent_encoded_urls(start_world, tmp_path):
    portal = portal_of("datasets_every_shape", "127.30.2.1", count=10)
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    resources = next(d for d in done.datasets if d["name"] == "dataset-000004")["raw"]["resources"]
    assert [r["format"] for r in resources] == ["xisx", ""]
    assert resources[0]["url"] == "http://files.example.org/data%20set/r%C3%A9sum%C3%A9.csv?x=1%2B2"
    for item in done.datasets:  # filled by the resource facts pipeline, one per resource
        assert [f["url"] for f in item["resource_facts"]] == [r["url"] for r in item["raw"]["resources"]]


def test_extras_as_list_flat_or_missing_are_kept_as_sent(start_world, tmp_path):
    portal = portal_of("datasets_every_shape", "127.30.3.1", count=5)
    world = start_world([portal])
    by_name = {d["name"]: d["raw"] for d in harvest(tmp_path, world, {"portal": world.portals[0].listed_url}).datasets}
    assert by_name["dataset-000000"]["extras"][0] == {"key": "update_frequency", "value": "monthly"}
    assert "extras" not in by_name["dataset-000001"] and by_name["dataset-000001"]["update_frequency"] == "monthly"
    assert "extras" not in by_name["dataset-000002"] and "update_frequency" not in by_name["dataset-000002"]


def test_a_dataset_over_16_mb_is_kept_in_gridfs_and_reported(start_world, tmp_path, db):
    from ckancrawl.pipelines.raw_repository import read_gridfs_content

    datasets = DatasetsSpec(count=3, seed=9, huge=[1])
    world = start_world([spec.dataset_portal(spec.AddressPool("127.30.4.1"), datasets)])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, db)
    assert done.stat("mongodb/raw_stored_in_gridfs") == 1
    assert "past MongoDB's 16 MB document limit" in done.result.log
    stored = db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, 1)})
    assert stored["raw"] is None and stored["stored_in"]["gridfs"] == "raw_datasets_files"
    content = read_gridfs_content(db, stored["stored_in"])
    assert decode_keys(content["raw"]) == make_dataset(datasets, 1)
    assert db.raw_datasets.count_documents({"stored_in": None}) == 2


# -- gathering ----------------------------------------------------------------------------------


def test_search_disabled_falls_back_to_package_list_and_package_show(start_world, tmp_path):
    portal = portal_of("datasets_search_disabled", "127.31.0.1")
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    datasets = portal.hosts[0].ckan.datasets
    assert sorted(done.ids) == sorted(ids_of(datasets, range(datasets.count)))
    assert done.run["method"] == "show" and done.run["complete"] is True
    assert done.run["errors"][0].startswith("package_search: ckan error: package_search: Authorization Error")
    assert {d["fetched_with"] for d in done.datasets} == {"package_show"}


def test_method_show_forces_list_then_show(start_world, tmp_path):
    portal = portal_of("datasets_every_shape", "127.31.1.1", count=30)
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url, "method": "show"})
    calls = world.stats()["hosts"][portal.hosts[0].address]["action_calls"]
    assert calls.get("package_search", 0) == 0 and calls["package_show"] == 30 and calls["package_list"] == 1
    assert len(set(done.ids)) == 30 and done.run["method"] == "show"


def test_a_5xx_on_page_3_shrinks_the_page_and_loses_nothing(start_world, tmp_path):
    portal = portal_of("datasets_5xx_on_page_3", "127.31.2.1")
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert len(done.ids) == len(set(done.ids)) == 2500
    assert done.run["complete"] is True and done.run["page_shrinks"] == 1


def test_pages_shrink_while_big_pages_fail_and_grow_back(start_world, tmp_path):
    portal = portal_of("datasets_big_pages_fail", "127.31.3.1")
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert len(done.ids) == len(set(done.ids)) == 2500
    assert done.run["complete"] is True
    # 1000 fails, 500 works three times, grows back to 1000, fails again.
    assert done.run["page_shrinks"] == 2
    rows = [t for t in world.stats()["hosts"][portal.hosts[0].address]["targets"] if "package_search" in t]
    assert any("rows=1000" in t and "%2Bid" in t for t in rows), "the page grew back after good pages"


def test_a_page_past_the_download_size_limit_is_asked_again_smaller(start_world, tmp_path):
    datasets = DatasetsSpec(count=1200, seed=13, notes_chars=2000)  # about 4 KB each
    world = start_world([spec.dataset_portal(spec.AddressPool("127.31.7.1"), datasets)])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url},
                   DOWNLOAD_MAXSIZE=2 * 1024 * 1024, DOWNLOAD_WARNSIZE=0)
    assert len(set(done.ids)) == 1200 and done.run["complete"] is True
    assert done.run["page_shrinks"] >= 1 and done.run["method"] == "search"


def test_a_lower_rows_maximum_is_paged_to_the_end(start_world, tmp_path):
    portal = portal_of("datasets_rows_max_100", "127.31.4.1")
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert len(set(done.ids)) == 350 and done.run["reported_count"] == 350


def _churn_portal(first_address: str) -> tuple[spec.PortalSpec, dict[str, set[str]]]:
    """2500 datasets; right after page 1 (1000 rows) two are removed and two added on
    each side of the paging position, and one ahead is modified."""
    datasets = DatasetsSpec(count=2500, seed=11, notes_chars=40, resources=1)
    ordered = sorted((dataset_id(datasets, i), i) for i in range(datasets.count))
    cursor = ordered[999][0]
    behind, ahead = [i for _, i in ordered[10:11]], [i for _, i in ordered[2000:2001]]
    fresh = [i for i in range(datasets.count, datasets.count + 200)]
    added_behind = [next(i for i in fresh if dataset_id(datasets, i) < cursor)]
    added_ahead = [next(i for i in fresh if dataset_id(datasets, i) > cursor)]
    modified = [ordered[1500][1]]
    datasets.churn = [{"after_search_calls": 1, "remove": behind + ahead, "add": added_behind + added_ahead,
                       "modify": modified}]
    groups = {
        "initial": ids_of(datasets, range(datasets.count)),
        "removed_behind": ids_of(datasets, behind), "removed_ahead": ids_of(datasets, ahead),
        "added_behind": ids_of(datasets, added_behind), "added_ahead": ids_of(datasets, added_ahead),
        "modified": ids_of(datasets, modified),
    }
    return spec.dataset_portal(spec.AddressPool(first_address), datasets, "datasets_churn"), groups


def test_datasets_added_and_removed_between_pages_yield_every_stable_dataset_once(start_world, tmp_path):
    portal, groups = _churn_portal("127.31.5.1")
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert len(done.ids) == len(set(done.ids))
    expected = groups["initial"] - groups["removed_ahead"] | groups["added_ahead"]
    assert set(done.ids) == expected
    modified = next(d for d in done.datasets if d["dataset_id"] in groups["modified"])
    assert "(version 1)" in modified["raw"]["notes"]


def test_the_next_run_finds_what_changed_behind_the_paging(start_world, tmp_path, db):
    portal, groups = _churn_portal("127.31.6.1")
    world = start_world([portal])
    url = world.portals[0].listed_url
    harvest(tmp_path, world, {"portal": url}, db)
    again = harvest(tmp_path, world, {"portal": url}, db)
    assert again.run["since_source"] == "last complete harvest" and again.run["complete"] is True
    assert set(again.run["deleted_ids"]) == groups["removed_behind"]
    assert groups["added_behind"] <= set(again.ids)
    assert db.raw_datasets.count_documents({"deleted": False}) == len(
        groups["initial"] - groups["removed_behind"] - groups["removed_ahead"]
        | groups["added_behind"] | groups["added_ahead"])


# -- reruns, history, deletions ------------------------------------------------------------------


def test_an_incremental_run_fetches_what_changed_and_marks_what_went(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.32.0.1", count=50)
    world = start_world([portal])
    url, datasets = world.portals[0].listed_url, portal.hosts[0].ckan.datasets
    first = harvest(tmp_path, world, {"portal": url}, db)
    world.change_datasets(world.portals[0], modify=[7], remove=[8], add=[50])
    second = harvest(tmp_path, world, {"portal": url}, db, HARVEST_SINCE_MARGIN=0)
    run = second.run
    assert run["since"] == first.run["run_timestamp"] and run["listed"] == 50
    assert set(second.ids) == ids_of(datasets, [7, 50])
    assert run["deleted_ids"] == [dataset_id(datasets, 8)]
    changed = db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, 7)})
    assert changed["harvested_at"] == run["run_timestamp"] and changed["first_harvested_at"] == first.run["run_timestamp"]
    old = list(db.raw_datasets_history.find({"dataset_id": dataset_id(datasets, 7)}))
    assert len(old) == 1 and old[0]["superseded_at"] == run["run_timestamp"]
    assert "(version 0)" in old[0]["raw"]["notes"]
    gone = db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, 8)})
    assert gone["deleted"] is True and gone["deleted_at"] == run["run_timestamp"] and gone["raw"]


def test_a_listed_dataset_missing_from_the_repository_is_fetched(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.32.4.1", count=20)
    world = start_world([portal])
    url, datasets = world.portals[0].listed_url, portal.hosts[0].ckan.datasets
    world.change_datasets(world.portals[0], remove=[6])
    harvest(tmp_path, world, {"portal": url}, db)
    world.change_datasets(world.portals[0], restore=[6])  # back with its 2020 metadata_modified
    again = harvest(tmp_path, world, {"portal": url}, db)
    assert again.ids == [dataset_id(datasets, 6)] and again.datasets[0]["fetched_with"] == "package_show"
    assert again.stat("harvest/gaps_filled") == 1
    assert db.raw_datasets.count_documents({"deleted": False}) == 20


def test_a_deleted_dataset_that_comes_back_is_present_again(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.32.1.1", count=20)
    world = start_world([portal])
    url, datasets = world.portals[0].listed_url, portal.hosts[0].ckan.datasets
    harvest(tmp_path, world, {"portal": url}, db)
    world.change_datasets(world.portals[0], remove=[4])
    harvest(tmp_path, world, {"portal": url, "since": "all"}, db)
    assert db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, 4)})["deleted"] is True
    world.change_datasets(world.portals[0], add=[4])  # back, with a new metadata_modified
    back = harvest(tmp_path, world, {"portal": url, "since": "all"}, db)
    assert back.stat("mongodb/raw_changed") == 1
    assert db.raw_datasets.find_one({"dataset_id": dataset_id(datasets, 4)})["deleted"] is False


def test_an_incomplete_gather_marks_nothing_deleted(start_world, tmp_path, db):
    datasets = DatasetsSpec(count=40, seed=12)
    faults = {
        # The first run's one page works; every later search call fails.
        "package_search": spec.Fault("http", status=503, calls=list(range(3, 200))),
        "package_list": spec.ckan_error(403, "Authorization Error", "Access denied"),
    }
    world = start_world([spec.dataset_portal(spec.AddressPool("127.32.2.1"), datasets, faults=faults)])
    url = world.portals[0].listed_url
    assert harvest(tmp_path, world, {"portal": url}, db).run["complete"] is True
    world.change_datasets(world.portals[0], remove=[0, 1, 2])
    second = harvest(tmp_path, world, {"portal": url}, db, RETRY_TIMES=0, HARVEST_MIN_PAGE_SIZE=250)
    assert second.run["complete"] is False and second.run["deleted_ids"] is None
    assert "listing the dataset ids" in second.run["errors"][0]
    assert db.raw_datasets.count_documents({"deleted": True}) == 0
    assert "is incomplete (nothing is marked deleted)" in second.result.log
    third = harvest(tmp_path, world, {"portal": url}, db, RETRY_TIMES=0, HARVEST_MIN_PAGE_SIZE=250)
    assert third.run["since"] == second.run["since"], "incremental runs start from the last complete one"


def test_rerunning_an_unchanged_portal_writes_only_the_run(start_world, tmp_path, db):
    portal = portal_of("datasets_every_shape", "127.32.3.1", count=15)
    world = start_world([portal])
    url = world.portals[0].listed_url
    first = harvest(tmp_path, world, {"portal": url}, db)
    incremental = harvest(tmp_path, world, {"portal": url}, db, HARVEST_SINCE_MARGIN=7200)
    assert incremental.run["since_source"] == "last complete harvest"
    assert incremental.run["since"] < first.run["run_timestamp"]
    assert incremental.datasets == [] and incremental.run["listed"] == 15
    assert incremental.stat("mongodb/documents_written") == 1  # the run document
    full = harvest(tmp_path, world, {"portal": url, "since": "all"}, db)
    assert len(full.datasets) == 15 and full.run["since"] is None
    assert full.stat("mongodb/raw_unchanged") == 15
    assert full.stat("mongodb/documents_written") == 1
    assert db.raw_datasets_history.count_documents({}) == 0
    assert db.harvest_runs.count_documents({}) == 3
    assert {d["harvested_at"] for d in db.raw_datasets.find()} == {first.run["run_timestamp"]}


# -- arguments and several portals -------------------------------------------------------------------


def test_several_portals_at_once_each_on_its_own(start_world, tmp_path):
    pool = spec.AddressPool("127.33.0.1")
    portals = [spec.HARVEST_PRESETS["datasets_every_shape"](pool, count=300 + 100 * k, seed=20 + k) for k in range(3)]
    world = start_world(portals)
    listing = tmp_path / "portals.txt"
    listing.write_text("# portals\n" + "".join(p.listed_url + "\n" for p in world.portals), encoding="utf-8")
    done = harvest(tmp_path, world, {"portals": str(listing), "method": "show"})
    by_portal = {run["portal"]: run for run in done.runs}
    assert sorted(run["datasets"] for run in by_portal.values()) == [300, 400, 500]
    assert all(run["complete"] for run in by_portal.values())
    stats = world.stats()["hosts"]
    assert all(stats[p.spec.hosts[0].address]["max_in_flight"] <= 4 for p in world.portals)


def test_without_mongodb_a_full_harvest_goes_to_the_feed(start_world, tmp_path):
    portal = portal_of("datasets_every_shape", "127.33.1.1", count=12)
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert len(done.datasets) == 12 and done.run["deleted_ids"] is None and done.run["since"] is None
    assert done.result.log.count("MONGODB_URI is not set") == 1


def test_a_portal_that_is_not_ckan_gets_a_run_with_the_reason(start_world, tmp_path):
    world = start_world([spec.not_ckan(spec.AddressPool("127.33.2.1"))])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    assert done.datasets == [] and done.run["complete"] is False
    assert done.run["errors"][0].startswith("not a ckan site")


@pytest.mark.parametrize(
    "args, message",
    [
        ({}, "give one of -a portal=URL or -a portals=PATH"),
        ({"portal": "ftp://example.org"}, "is not an http(s) URL"),
        ({"portal": "http://a.test/", "portals": "x"}, "give one of"),
        ({"portals": "/nonexistent/portals.txt"}, "no such file"),
        ({"portal": "http://a.test/", "method": "fetch"}, "use method=search (the default) or method=show"),
        ({"portal": "http://a.test/", "since": "last week"}, "is not an ISO 8601 date or time"),
        ({"portal": "http://a.test/", "method": "show", "since": "2024-01-01"}, "since= does not apply"),
        ({"portal": "http://a.test/", "run_timestamp": "yesterday"}, "is not an ISO 8601 UTC time"),
    ],
)
def test_bad_arguments_fail_fast_with_a_clear_message(tmp_path, args, message):
    result = run_crawl("harvest", tmp_path, args=args, feed=False, timeout=60)
    assert result.returncode != 0
    assert message in result.log


def test_a_portals_file_with_junk_lines_is_refused(tmp_path):
    listing = tmp_path / "portals.txt"
    listing.write_text("http://a.test/\nnot a url\n", encoding="utf-8")
    result = run_crawl("harvest", tmp_path, args={"portals": str(listing)}, feed=False, timeout=60)
    assert result.returncode != 0
    assert "line 2: 'not a url'" in result.log


def test_items_serialise_to_json_lines(start_world, tmp_path):
    portal = portal_of("datasets_every_shape", "127.33.3.1", count=3)
    world = start_world([portal])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url})
    lines = done.result.feed.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line).get("dataset_id") is None for line in lines] == [False, False, False, True]
