"""A large portal harvested in id ranges (HARVEST_SPLIT), in one process.

The ranges are separate scheduled requests whose results meet in a ledger; the last
range to finish yields the portal's run. These tests check that the split changes
nothing a user can see except speed: every dataset once, the same deletions and gap
filling as the whole-portal path, and an incomplete run when one range fails.
"""
from __future__ import annotations

import asyncio
import random

import pytest

from ckancrawl.spiders.harvest import IdRange, merge_parts
from ckancrawl.split_ledger import LocalLedger
from tests.test_harvest_world import db, harvest, ids_of  # noqa: F401 (fixture)
from tests.world import spec
from tests.world.datasets import DatasetsSpec, dataset_id

SPLIT = {"HARVEST_SPLIT": 4, "HARVEST_PAGE_SIZE": 100}


# -- id ranges and merging ---------------------------------------------------------------


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 16, 100, 256, 1000])
def test_ranges_cover_every_id_exactly_once(parts):
    ranges = IdRange.split(parts)
    assert len(ranges) == min(parts, 256)
    rng = random.Random(parts)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(2000)] + ["", "0", "ff", "fff", "Z-upper", "~tilde", "é"]
    for dataset_id in ids:
        assert sum(r.holds(dataset_id) for r in ranges) == 1, dataset_id


def test_ranges_of_uuids_are_about_even():
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(16000)]
    sizes = [sum(r.holds(i) for i in ids) for r in IdRange.split(16)]
    assert min(sizes) > 800 and max(sizes) < 1200, sizes


def test_a_range_as_a_solr_clause():
    first, middle, last = IdRange.split(3)
    assert first.solr() == '+id:[* TO "55"}'
    assert middle.solr() == '+id:["55" TO "aa"}'
    assert last.solr() == '+id:["aa" TO *]'
    assert IdRange().solr() == "" and IdRange().whole


def part(**fields):
    return {"complete": True, "datasets": 10, "listed": 12, "deleted_ids": [], "errors": [], "page_shrinks": 0,
            **fields}


PORTAL_RUN = {"portal": "http://p", "run_timestamp": "2026-11-22T03:00:00Z", "api_url": "http://p/api/3/action/",
          "method": "search", "reported_count": 24, "split": 2, "errors": []}


def test_merged_parts_add_up():
    run = merge_parts(PORTAL_RUN, [part(deleted_ids=["b"], page_shrinks=1), part(deleted_ids=["a"])])
    assert (run.complete, run.datasets, run.listed, run.deleted_ids, run.page_shrinks) == (True, 20, 24, ["a", "b"], 1)
    assert (run.portal, run.split, run.reported_count) == ("http://p", 2, 24)


def test_one_incomplete_part_makes_the_run_incomplete_and_deletes_nothing():
    run = merge_parts(PORTAL_RUN, [part(deleted_ids=["a"]), part(complete=False, listed=None, deleted_ids=None,
                                                              errors=["ids 80..: package_search: timeout: x"])])
    assert run.complete is False and run.deleted_ids is None and run.listed is None
    assert run.errors == ["ids 80..: package_search: timeout: x"]


def test_no_repository_means_deletions_unknown_even_when_complete():
    run = merge_parts(PORTAL_RUN, [part(deleted_ids=None), part(deleted_ids=None)])
    assert run.complete is True and run.deleted_ids is None


def test_the_local_ledger_concludes_once_whatever_the_order_and_repeats():
    async def play():
        ledger = LocalLedger()
        return [await ledger.record("w", i, 3, {"i": i}) for i in (2, 0, 2, 1, 1, 0)]

    outcomes = asyncio.run(play())
    done = [o for o in outcomes if o is not None]
    assert len(done) == 1 and outcomes[3] is not None
    assert done[0] == [{"i": 0}, {"i": 1}, {"i": 2}]


# -- crawls ----------------------------------------------------------------------------


def test_a_split_harvest_yields_every_dataset_once_and_one_complete_run(start_world, tmp_path, db):
    datasets = DatasetsSpec(count=900, seed=41, notes_chars=40, resources=1)
    world = start_world([spec.dataset_portal(spec.AddressPool("127.34.0.1"), datasets)])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, db, **SPLIT)
    assert len(done.ids) == len(set(done.ids)) == 900
    assert set(done.ids) == ids_of(datasets, range(900))
    run = done.run
    assert (run["complete"], run["split"], run["reported_count"], run["listed"], run["datasets"]) == (
        True, 4, 900, 900, 900)
    assert run["deleted_ids"] == [] and run["errors"] == []
    assert done.stat("harvest/split_ranges") == 4
    assert db.raw_datasets.count_documents({}) == 900
    assert db.harvest_runs.count_documents({"complete": True, "split": 4}) == 1
    targets = [t for t in world.stats()["hosts"][world.portals[0].spec.hosts[0].address]["targets"]
               if "package_search" in t]
    assert sum("%2Bid%3A%5B%22c0%22+TO+%2A%5D" in t for t in targets) >= 3, "the last range paged on its own"


def test_a_small_portal_is_not_split(start_world, tmp_path):
    datasets = DatasetsSpec(count=150, seed=42)
    world = start_world([spec.dataset_portal(spec.AddressPool("127.34.1.1"), datasets)])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, **SPLIT)
    assert done.run["split"] == 1 and len(set(done.ids)) == 150 and done.run["complete"] is True


def test_a_split_incremental_run_finds_changes_gaps_and_deletions(start_world, tmp_path, db):
    datasets = DatasetsSpec(count=600, seed=43, notes_chars=40, resources=1)
    world = start_world([spec.dataset_portal(spec.AddressPool("127.34.2.1"), datasets)])
    portal = world.portals[0]
    first = harvest(tmp_path, world, {"portal": portal.listed_url}, db, **SPLIT)
    assert first.run["complete"] is True
    db.raw_datasets.delete_one({"dataset_id": dataset_id(datasets, 30)})  # a gap in the repository
    world.change_datasets(portal, modify=[7, 400], remove=[8, 500], add=[600])
    second = harvest(tmp_path, world, {"portal": portal.listed_url}, db, HARVEST_SINCE_MARGIN=0, **SPLIT)
    run = second.run
    assert run["split"] == 4 and run["complete"] is True and run["listed"] == 599
    assert run["since_source"] == "last complete harvest"
    assert set(second.ids) == ids_of(datasets, [7, 400, 600, 30])
    assert sorted(run["deleted_ids"]) == sorted(ids_of(datasets, [8, 500]))
    assert db.raw_datasets.count_documents({"deleted": False}) == 599


def test_a_range_that_fails_for_good_makes_the_run_incomplete(start_world, tmp_path, db):
    datasets = DatasetsSpec(count=800, seed=44, notes_chars=40, resources=1)
    faults = {"package_search": spec.Fault("http", status=503, calls=list(range(8, 400)))}
    world = start_world([spec.dataset_portal(spec.AddressPool("127.34.3.1"), datasets, faults=faults)])
    done = harvest(tmp_path, world, {"portal": world.portals[0].listed_url}, db, RETRY_TIMES=0,
                   HARVEST_MIN_PAGE_SIZE=100, **SPLIT)
    run = done.run
    assert run["split"] == 4 and run["complete"] is False and run["deleted_ids"] is None
    assert run["errors"] and all("package_search" in error and "ids " in error for error in run["errors"])
    assert len(done.ids) == len(set(done.ids)) < 800
    assert db.raw_datasets.count_documents({}) == len(done.ids)
    assert db.harvest_runs.count_documents({"complete": False}) == 1
    assert "is incomplete (nothing is marked deleted)" in done.result.log
