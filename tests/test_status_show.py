"""status_show's extensions come in several shapes; the snapshot holds one."""
import pytest

from ckancrawl.status_show import normalize_extensions, text_field


@pytest.mark.parametrize(
    "value, expected",
    [
        (["stats", "datastore", "text_view"], ["datastore", "stats", "text_view"]),
        (["b", "a", "b"], ["a", "b"]),
        ({"spatial_metadata": "2.0", "harvest": {"version": "1.4"}}, ["harvest", "spatial_metadata"]),
        ("stats datastore  text_view", ["datastore", "stats", "text_view"]),
        ("stats,datastore", ["datastore", "stats"]),
        ([{"name": "dcat"}, {"name": "harvest"}, {"nameless": 1}], ["dcat", "harvest"]),
        ([], []),
        ("", []),
    ],
)
def test_extension_shapes(value, expected):
    assert normalize_extensions(value) == expected


@pytest.mark.parametrize("value", [None, 3, True])
def test_unknown_extensions_are_none_not_empty(value):
    assert normalize_extensions(value) is None


def test_text_field():
    status = {"site_title": "  Open Data  ", "site_url": "", "ckan_version": 2.9}
    assert text_field(status, "site_title") == "Open Data"
    assert text_field(status, "site_url") is None
    assert text_field(status, "ckan_version") == "2.9"
    assert text_field(status, "locale_default") is None
