"""What "changed" means for catalog fields (ckancrawl.catalog.fields), and the time
series columns (ckancrawl.catalog.series). No services needed."""
from __future__ import annotations

import pytest

from ckancrawl.catalog.fields import EXTENSION_FIELDS, SITE_FIELDS, catalog_dataset_ref, known_values
from ckancrawl.catalog.series import EXTENSIONS, SITES, utc_timestamp
from ckancrawl.catalog.sync import DatasetSync
from ckancrawl.items import ExtensionSnapshot, SiteSnapshot
from itemadapter import ItemAdapter


@pytest.mark.parametrize("catalog, measured", [("12", 12), (12, 12), (" 12 ", 12), ("12.0", 12)])
def test_a_count_scheming_returns_as_text_equals_the_number(catalog, measured):
    assert SITE_FIELDS["num_datasets"].same(catalog, measured)


def test_a_different_count_is_a_change():
    assert not SITE_FIELDS["num_datasets"].same("12", 13)


def test_extension_order_and_duplicates_do_not_matter():
    assert SITE_FIELDS["extensions"].same(["stats", "datastore"], ["datastore", "stats", "stats"])
    assert not SITE_FIELDS["extensions"].same(["stats"], ["datastore", "stats"])


def test_extensions_stored_as_json_text_are_read_as_a_list():
    assert SITE_FIELDS["extensions"].same('["b", "a"]', ["a", "b"])


def test_an_empty_extension_list_means_no_value():
    assert SITE_FIELDS["extensions"].same(None, [])
    assert known_values({"extensions": []}, SITE_FIELDS) == {}


@pytest.mark.parametrize("catalog", ["true", "True", "1", True])
def test_booleans_compare_by_meaning(catalog):
    assert EXTENSION_FIELDS["is_archived"].same(catalog, True)
    assert not EXTENSION_FIELDS["is_archived"].same(catalog, False)


def test_instants_compare_across_utc_spellings():
    assert EXTENSION_FIELDS["release_date"].same("2024-02-01T12:30:00+00:00", "2024-02-01T12:30:00Z")
    assert not EXTENSION_FIELDS["release_date"].same("2024-02-01T12:30:00Z", "2024-02-01T13:30:00Z")


def test_instants_are_written_in_utc_without_a_zone_for_the_search_index():
    # CKAN's indexer would turn "...Z" of a *_date field into "+00:00", which Solr refuses.
    assert EXTENSION_FIELDS["release_date"].to_catalog("2024-02-01T14:30:00+02:00") == "2024-02-01T12:30:00"
    assert EXTENSION_FIELDS["release_date"].same("2024-02-01T12:30:00", "2024-02-01T12:30:00Z")


def test_language_stats_are_written_as_json_text_and_compared_decoded():
    field = EXTENSION_FIELDS["language_stats"]
    written = field.to_catalog({"Python": 90.0, "HTML": 10.0})
    assert written == '{"Python": 90.0, "HTML": 10.0}'
    assert field.same('{"HTML": 10, "Python": 90}', {"Python": 90.0, "HTML": 10.0})


def test_unreadable_catalog_text_differs_from_every_value():
    assert not SITE_FIELDS["num_datasets"].same("lots", 12)


def test_unknown_values_are_never_written():
    snapshot = ItemAdapter(SiteSnapshot(site="s", run_timestamp="2026-11-22T03:00:00Z", source="catalog",
                                        num_datasets=0, num_groups=None, ckan_version=None, extensions=None))
    assert known_values(snapshot, SITE_FIELDS) == {"num_datasets": 0}


def test_only_changed_fields_are_patched_with_catalog_values():
    dataset = {"num_datasets": "12", "num_groups": "3", "extensions": ["b", "a"], "ckan_version": "2.9.5"}
    known = {"num_datasets": 12, "num_groups": 4, "extensions": ["a", "b", "c"], "ckan_version": "2.9.5"}
    changes = DatasetSync(client=None).changes(dataset, known, SITE_FIELDS)  # type: ignore[arg-type]
    assert changes == {"num_groups": ("3", 4), "extensions": (["b", "a"], ["a", "b", "c"])}


def test_the_dataset_id_is_preferred_to_its_name():
    assert catalog_dataset_ref({"catalog_dataset": "n", "catalog_dataset_id": "i"}) == "i"
    assert catalog_dataset_ref({"catalog_dataset": "n", "catalog_dataset_id": None}) == "n"
    assert catalog_dataset_ref({"catalog_dataset": None}) is None


def test_every_mapped_field_exists_on_its_item():
    for item_class, fields in ((SiteSnapshot, SITE_FIELDS), (ExtensionSnapshot, EXTENSION_FIELDS)):
        names = set(item_class.__dataclass_fields__)
        assert {f.item_field for f in fields.values()} <= names


def test_every_series_column_comes_from_an_item_field():
    for series in (SITES, EXTENSIONS):
        names = set(series.item_class.__dataclass_fields__)
        assert {c.source or c.id for c in series.columns} <= names
        assert series.key == ("name", "run_timestamp")


def test_a_row_keeps_unknown_as_null_never_zero():
    snapshot = SiteSnapshot(site="demo", run_timestamp="2026-11-22T03:00:00Z", source="catalog",
                            status="partial", num_datasets=5, num_organizations=None, extensions=["b", "a"])
    row = SITES.row(ItemAdapter(snapshot))
    assert row["name"] == "demo"
    assert row["run_timestamp"] == "2026-11-22T03:00:00"
    assert (row["num_datasets"], row["num_organizations"], row["extensions"]) == (5, None, ["b", "a"])


def test_run_timestamps_are_stored_as_naive_utc():
    assert utc_timestamp("2026-11-22T03:00:00Z") == "2026-11-22T03:00:00"
    assert utc_timestamp("2026-11-22T04:00:00+01:00") == "2026-11-22T03:00:00"


def test_a_table_with_other_columns_is_told_apart():
    existing = [{"id": "_id", "type": "int"}] + [{"id": c.id, "type": c.type} for c in SITES.columns]
    assert not SITES.check(existing).blocks_writing
    existing = [f for f in existing if f["id"] != "num_groups"] + [{"id": "note", "type": "text"}]
    existing = [{**f, "type": "text"} if f["id"] == "num_datasets" else f for f in existing]
    check = SITES.check(existing)
    assert check.blocks_writing
    assert check.describe() == ("missing columns: num_groups; other types: num_datasets is text, ours is int8; "
                                "columns we do not write: note")


def test_type_spellings_of_the_same_postgresql_type_match():
    existing = [{"id": c.id, "type": {"int8": "bigint", "_text": "text[]"}.get(c.type, c.type)} for c in SITES.columns]
    assert not SITES.check(existing).blocks_writing
