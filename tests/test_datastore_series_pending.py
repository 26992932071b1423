"""Rows kept on disk for a later run (ckancrawl.catalog.pending). No services needed."""
from __future__ import annotations

from ckancrawl.catalog.pending import PendingRows, destination

HERE = destination("https://catalog.example.org", "ckan-sites-metadata", "CKAN Sites Dynamic Metadata")


def test_saved_rows_load_back_in_order(tmp_path):
    pending = PendingRows(tmp_path, "sites", HERE)
    pending.save([{"name": "a", "num_datasets": None}, {"name": "b", "num_datasets": 2}])
    paths, rows = pending.load()
    assert rows == [{"name": "a", "num_datasets": None}, {"name": "b", "num_datasets": 2}]
    pending.remove(paths)
    assert pending.load() == ([], [])


def test_rows_for_another_catalog_or_series_are_left_alone(tmp_path):
    PendingRows(tmp_path, "sites", destination("http://127.0.0.1:55000", "ckan-sites-metadata",
                                               "CKAN Sites Dynamic Metadata")).save([{"name": "test"}])
    PendingRows(tmp_path, "extensions", HERE).save([{"name": "ext"}])
    assert PendingRows(tmp_path, "sites", HERE).load() == ([], [])


def test_a_torn_last_line_is_skipped(tmp_path):
    pending = PendingRows(tmp_path, "sites", HERE)
    path = pending.save([{"name": "a"}])
    with path.open("a") as out:
        out.write('{"name": "b", "num_da')
    assert pending.load()[1] == [{"name": "a"}]


def test_the_destination_ignores_a_trailing_slash():
    assert destination("https://c.example.org/", "d", "r") == destination("https://c.example.org", "d", "r")
    assert destination("https://c.example.org", "d", "r") != destination("https://c.example.org", "d", "other")
