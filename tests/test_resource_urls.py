"""The URL that is fetched: normalised as RFC 3986 says, or why there is none."""
from __future__ import annotations

import pytest

from ckancrawl.resources.urls import normalise_url


@pytest.mark.parametrize(
    "given, normalised",
    [
        ("  HTTP://Example.ORG:80/a b/ü.csv?x=1&y=%7e%2f#part ", "http://example.org/a%20b/%C3%BC.csv?x=1&y=~%2F"),
        ("https://example.org:443", "https://example.org/"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("http://bücher.example/daten.csv", "http://xn--bcher-kva.example/daten.csv"),
        ("//cdn.example.org/f.csv", "http://cdn.example.org/f.csv"),
        ("www.example.org/data.xls", "http://www.example.org/data.xls"),
        ("http://example.org/a\n/b.csv\t", "http://example.org/a/b.csv"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://example.org/q?b=2&a=1", "http://example.org/q?b=2&a=1"),
        ("http://example.org/%e2%82%ac.csv", "http://example.org/%E2%82%AC.csv"),
    ],
)
def test_normalisation(given, normalised):
    assert normalise_url(given) == (normalised, None)


def test_a_relative_url_is_resolved_against_the_base():
    assert normalise_url("file.csv", base="https://portal.example/dataset/d/resource/r/download/") == (
        "https://portal.example/dataset/d/resource/r/download/file.csv", None)


@pytest.mark.parametrize(
    "given, kind",
    [(None, "no url"), ("", "no url"), ("   ", "no url"), (42, "no url"), ("data/file.csv", "bad url"),
     ("http:///path", "bad url"), ("http://example.org:99999/", "bad url")],
)
def test_unusable_urls_say_why(given, kind):
    normalised, error = normalise_url(given)
    assert normalised is None
    assert error.startswith(kind + ": ")


def test_other_schemes_are_normalised_but_not_fetched():
    assert normalise_url("FTP://ftp.example.org/a.zip") == (
        "ftp://ftp.example.org/a.zip", "bad url: the ftp: scheme is not fetched (only http and https)")
