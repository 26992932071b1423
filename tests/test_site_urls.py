"""Finding a site's URL in a catalog dataset, and where its Action API may live."""
import pytest

from ckancrawl.site_urls import (
    extras_dict,
    install_roots,
    normalize_site_url,
    site_url_from_dataset,
    url_in_text,
    usable_url,
)


def test_url_field_comes_first():
    dataset = {
        "url": "https://data.example.org/",
        "resources": [{"url": "https://other.example.org/"}],
        "notes": "see https://notes.example.org",
    }
    assert site_url_from_dataset(dataset) == "https://data.example.org/"


def test_resource_url_when_url_is_empty():
    dataset = {"url": "", "resources": [{"url": "not a url"}, {"url": "https://res.example.org/data"}]}
    assert site_url_from_dataset(dataset) == "https://res.example.org/data"


@pytest.mark.parametrize("key", ["website", "homepage", "site_url", "portal_url"])
def test_url_extras_in_list_form(key):
    dataset = {"url": None, "extras": [{"key": "other", "value": "x"}, {"key": key, "value": "https://e.example.org"}]}
    assert site_url_from_dataset(dataset) == "https://e.example.org"


def test_extras_are_read_in_the_documented_order():
    dataset = {"extras": [{"key": "portal_url", "value": "https://p.example.org"},
                          {"key": "homepage", "value": "https://h.example.org"}]}
    assert site_url_from_dataset(dataset) == "https://h.example.org"


def test_scheming_flattened_extra():
    assert site_url_from_dataset({"website": "https://flat.example.org"}) == "https://flat.example.org"


def test_url_in_notes_is_the_last_resort():
    dataset = {"notes": "The portal (https://notes.example.org/data), launched 2019."}
    assert site_url_from_dataset(dataset) == "https://notes.example.org/data"


def test_no_usable_url():
    dataset = {"url": "ftp://files.example.org", "resources": [{"url": ""}], "notes": "no link here"}
    assert site_url_from_dataset(dataset) is None


def test_bare_host_gets_a_scheme():
    assert usable_url("data.example.org") == "http://data.example.org"
    assert usable_url("www.example.org/data") == "http://www.example.org/data"


@pytest.mark.parametrize("value", [None, 42, "", "   ", "mailto:x@example.org", "javascript:alert(1)",
                                   "http://", "http://exa mple.org", "just words"])
def test_not_urls(value):
    assert usable_url(value) is None


def test_url_in_text_strips_trailing_punctuation():
    assert url_in_text("Visit https://a.example.org/x.") == "https://a.example.org/x"


def test_extras_dict_accepts_both_shapes():
    assert extras_dict({"extras": {"a": 1}}) == {"a": 1}
    assert extras_dict({"extras": [{"key": "a", "value": 1}, {"bad": 2}, "junk"]}) == {"a": 1}
    assert extras_dict({}) == {}


def test_normalized_site_url_is_a_stable_key():
    assert normalize_site_url("HTTPS://Data.Example.org:443/Portal/?q=1#top") == "https://data.example.org/Portal"
    assert normalize_site_url("http://data.example.org:8080/") == "http://data.example.org:8080"


@pytest.mark.parametrize(
    "url, roots",
    [
        ("https://h.example.org/", ["https://h.example.org/"]),
        ("https://h.example.org/dataset", ["https://h.example.org/"]),
        ("https://h.example.org/dataset/abc?x=1", ["https://h.example.org/"]),
        ("https://h.example.org/data/", ["https://h.example.org/data/", "https://h.example.org/"]),
        ("https://h.example.org/data/dataset/x", ["https://h.example.org/data/", "https://h.example.org/"]),
        ("https://h.example.org/en/dataset", ["https://h.example.org/en/", "https://h.example.org/"]),
        ("https://h.example.org/data/pt_BR/", ["https://h.example.org/data/pt_BR/", "https://h.example.org/data/",
                                               "https://h.example.org/"]),
        ("https://h.example.org/index.html", ["https://h.example.org/"]),
        ("https://h.example.org/api/3/action/status_show", ["https://h.example.org/"]),
    ],
)
def test_install_roots(url, roots):
    assert install_roots(url) == roots
