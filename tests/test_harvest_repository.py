"""The raw metadata repository's write strategies, driven in-process against SecantusDB,
and the small pieces of the harvest spider (page sizes, ``since``)."""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ckancrawl.content_hash import content_hash
from ckancrawl.items import HarvestedDataset, HarvestRun
from ckancrawl.pipelines import raw_repository
from ckancrawl.pipelines.mongo_keys import encode_keys
from ckancrawl.pipelines.mongodb import MongoWriter, Pending, Target
from ckancrawl.spiders.ckan_api import PageSize
from ckancrawl.spiders.harvest import parse_since, portal_key

PORTAL = "https://data.example.org"
RUN_1, RUN_2, RUN_3 = "2024-01-07T03:00:00Z", "2024-01-14T03:00:00Z", "2024-01-21T03:00:00Z"


@pytest.fixture
def writer(mongo_db, mongodb_server, tmp_path):
    writer = MongoWriter(mongodb_server.uri, mongo_db.name, spill_path=tmp_path / "spill.jsonl",
                         retry_backoff=0.01, sleep=lambda s: None)
    writer.connect()
    yield writer
    writer.close()


def dataset(number: int, run: str, notes: str = "first", facts: list | None = None) -> Pending:
    raw = {"id": f"id-{number:03d}", "name": f"ds-{number}", "notes": notes, "extras": [{"key": "a.b", "value": 1}],
           "odd.key": {"$x": 1}}
    item = HarvestedDataset(PORTAL, raw["id"], raw["name"], "2024-01-01T00:00:00", raw, content_hash(raw), run,
                            resource_facts=facts)
    document = asdict(item)
    document["raw"] = encode_keys(document["raw"])
    return Pending(Target.of(HarvestedDataset), document)


def run(run_timestamp: str, deleted: list[str] | None, complete: bool = True) -> Pending:
    return Pending(Target.of(HarvestRun), asdict(HarvestRun(PORTAL, run_timestamp, complete=complete,
                                                            deleted_ids=deleted)))


def counts(outcome) -> dict[str, int]:
    return dict(outcome.counts())


def test_unchanged_datasets_are_not_written_again(writer, mongo_db):
    writer.write([dataset(n, RUN_1) for n in range(5)])
    outcome = writer.write([dataset(n, RUN_2) for n in range(5)])
    assert counts(outcome) == {"batches": 1, "raw_unchanged": 5}
    assert {d["harvested_at"] for d in mongo_db.raw_datasets.find()} == {RUN_1}


def test_a_changed_dataset_keeps_its_old_version_in_history(writer, mongo_db):
    writer.write([dataset(1, RUN_1)])
    outcome = writer.write([dataset(1, RUN_2, notes="second")])
    assert counts(outcome)["raw_changed"] == 1 and counts(outcome)["raw_history_written"] == 1
    current = mongo_db.raw_datasets.find_one({"dataset_id": "id-001"})
    old = mongo_db.raw_datasets_history.find_one({"dataset_id": "id-001"})
    assert current["raw"]["notes"] == "second" and current["harvested_at"] == RUN_2
    assert current["first_harvested_at"] == RUN_1
    assert old["raw"]["notes"] == "first" and old["harvested_at"] == RUN_1
    assert old["superseded_at"] == RUN_2 and old["superseded_by"] == current["content_hash"]


def test_writing_a_batch_twice_leaves_the_same_state(writer, mongo_db):
    writer.write([dataset(n, RUN_1) for n in range(3)])
    batch = [dataset(n, RUN_2, notes="second") for n in range(3)]
    writer.write(batch)
    again = writer.write(batch)
    assert counts(again) == {"batches": 1, "raw_unchanged": 3}
    assert mongo_db.raw_datasets.count_documents({}) == 3
    assert mongo_db.raw_datasets_history.count_documents({}) == 3


def test_an_older_version_replayed_late_goes_to_history_only(writer, mongo_db):
    writer.write([dataset(1, RUN_2, notes="newer")])
    outcome = writer.write([dataset(1, RUN_1, notes="older")])
    assert counts(outcome)["raw_older_to_history"] == 1
    assert mongo_db.raw_datasets.find_one({"dataset_id": "id-001"})["raw"]["notes"] == "newer"
    assert mongo_db.raw_datasets_history.find_one({"dataset_id": "id-001"})["raw"]["notes"] == "older"


def test_new_resource_facts_make_a_new_version_and_missing_ones_do_not(writer, mongo_db):
    writer.write([dataset(1, RUN_1, facts=[{"md5": "a"}])])
    assert counts(writer.write([dataset(1, RUN_2, facts=None)])) == {"batches": 1, "raw_unchanged": 1}
    assert counts(writer.write([dataset(1, RUN_2, facts=[{"md5": "a"}])]))["raw_unchanged"] == 1
    assert counts(writer.write([dataset(1, RUN_3, facts=[{"md5": "b"}])]))["raw_changed"] == 1
    assert mongo_db.raw_datasets.find_one()["resource_facts"] == [{"md5": "b"}]


def test_a_dataset_another_writer_inserted_meanwhile_is_not_duplicated(writer, mongo_db, monkeypatch):
    writer.write([dataset(1, RUN_1)])
    real = raw_repository._stored
    calls = []

    def stale_then_real(*args):
        calls.append(1)
        return {} if len(calls) == 1 else real(*args)

    monkeypatch.setattr(raw_repository, "_stored", stale_then_real)
    outcome = writer.write([dataset(1, RUN_2)])  # seen as new: the insert hits the unique index
    assert counts(outcome)["retries"] == 1 and counts(outcome)["raw_unchanged"] == 1
    assert mongo_db.raw_datasets.count_documents({}) == 1


def test_spilled_datasets_replay_through_their_strategy(writer, mongo_db):
    lines = [dataset(n, RUN_1).to_json() for n in range(3)] + [run(RUN_1, []).to_json()]
    assert '"strategy": "ckancrawl.pipelines.raw_repository.RawDatasetWrites"' in lines[0]
    outcome = writer.replay(lines)
    assert counts(outcome)["raw_created"] == 3
    assert mongo_db.raw_datasets.count_documents({}) == 3 and mongo_db.harvest_runs.count_documents({}) == 1


def test_a_complete_run_marks_its_deletions_once(writer, mongo_db):
    writer.write([dataset(n, RUN_1) for n in range(3)])
    assert counts(writer.write([run(RUN_2, ["id-000", "id-404"])]))["raw_deleted_marked"] == 1
    writer.write([run(RUN_3, ["id-000"])])
    gone = mongo_db.raw_datasets.find_one({"dataset_id": "id-000"})
    assert gone["deleted"] is True and gone["deleted_at"] == RUN_2
    assert mongo_db.raw_datasets.count_documents({"deleted": False}) == 2


def test_an_incomplete_run_marks_nothing(writer, mongo_db):
    writer.write([dataset(0, RUN_1)])
    writer.write([run(RUN_2, ["id-000"], complete=False)])
    assert mongo_db.raw_datasets.find_one()["deleted"] is False
    assert mongo_db.harvest_runs.find_one()["complete"] is False


def test_an_older_run_does_not_mark_a_dataset_a_later_run_stored(writer, mongo_db):
    writer.write([dataset(0, RUN_3)])
    writer.write([run(RUN_2, ["id-000"])])
    assert mongo_db.raw_datasets.find_one()["deleted"] is False


def test_datasets_and_their_run_in_one_batch_are_written_in_order(writer, mongo_db):
    writer.write([dataset(0, RUN_1), dataset(1, RUN_1)])
    outcome = writer.write([dataset(0, RUN_2), run(RUN_2, ["id-001"]), dataset(2, RUN_2)])
    assert counts(outcome)["raw_deleted_marked"] == 1 and counts(outcome)["raw_created"] == 1
    assert mongo_db.raw_datasets.count_documents({"deleted": True}) == 1


def test_the_reader_gives_the_last_complete_run_and_the_present_ids(writer, mongodb_server, mongo_db):
    writer.write([dataset(n, RUN_1) for n in range(3)] + [run(RUN_1, [])])
    writer.write([run(RUN_2, ["id-002"]), run(RUN_3, None, complete=False)])
    reader = raw_repository.RepositoryReader(mongodb_server.uri, mongo_db.name)
    try:
        assert reader.last_complete_run(PORTAL)["run_timestamp"] == RUN_2
        assert reader.active_ids(PORTAL) == {"id-000", "id-001"}
        assert reader.last_complete_run("https://other.example.org") is None
    finally:
        reader.close()


# -- spider pieces ---------------------------------------------------------------------------


def test_pages_halve_down_to_the_minimum_and_grow_back_after_good_pages():
    size = PageSize(maximum=1000, minimum=100, grow_after=2)
    assert [size.shrink() for _ in range(5)] == [True, True, True, True, False]
    assert size.current == 100
    sizes = []
    for _ in range(10):
        size.succeeded()
        sizes.append(size.current)
    assert sizes[-1] == 1000 and sizes == sorted(sizes)


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=timezone.utc)),
    ("2024-05-01T10:00:00.123456", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)),
])
def test_since_is_read_as_utc(text, expected):
    assert parse_since(text) == expected


@pytest.mark.parametrize("url, key", [
    ("https://Data.Example.org/", "https://data.example.org"),
    ("https://data.example.org/dataset/abc", "https://data.example.org"),
    ("https://example.org/data/api/3/action/", "https://example.org/data"),
    ("http://example.org:80/en/dataset", "http://example.org"),
])
def test_a_portal_is_known_by_its_install_root(url, key):
    assert portal_key(url) == key


def test_content_hash_ignores_key_order():
    assert content_hash({"a": 1, "b": [1, {"c": "é"}]}) == content_hash({"b": [1, {"c": "é"}], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": "1"})


def test_item_fields_for_the_resource_facts_pipeline():
    item = HarvestedDataset(PORTAL, "id", "n", None, {"id": "id"}, content_hash({"id": "id"}), RUN_1)
    assert item.resource_facts is None and item.fetched_with == "package_search"
    assert Path(raw_repository.__file__).name == "raw_repository.py"
