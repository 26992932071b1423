"""Site profiles: what the home page and the domain say, and optional geocoding."""
from __future__ import annotations

import json

import pytest
from scrapy.http import HtmlResponse, Request

from ckancrawl.site_profile import country_of, normalize_language, page_facts, site_type_of
from tests.crawl import run_crawl
from tests.geocoder_standin import GeocoderStandin
from tests.world import spec


@pytest.mark.parametrize(
    "url, site_type",
    [
        ("https://data.gov.uk/", "Government"),
        ("https://www.data.gouv.fr/", "Government"),
        ("https://datos.gob.mx/", "Government"),
        ("https://opendata.go.jp/", "Government"),
        ("https://data.europa.eu/", "Government"),
        ("https://data.mit.edu/", "Educational"),
        ("https://ckan.ac.uk/", "Educational"),
        ("https://data.uni-hamburg.de/", "Educational"),
        ("https://data.research.csiro.au/", "Research"),
        ("https://data.nhs.uk/", "Healthcare"),
        ("https://opendata.okfn.org/", "Non_profit"),
        ("https://portal.org.za/", "Non_profit"),
        ("https://opendata.acme.com/", "Commercial"),
        ("https://shop.co.uk/", "Commercial"),
        ("https://portal.example.de/", "Unknown"),
        ("http://127.0.0.1:5000/", "Unknown"),
    ],
)
def test_site_type_by_domain_rules(url, site_type):
    assert site_type_of(url) == site_type


@pytest.mark.parametrize(
    "url, country",
    [
        ("https://data.gov.uk", "GB"),
        ("https://www.data.gouv.fr", "FR"),
        ("https://data.europa.eu", "EU"),
        ("https://data.gov.co", "CO"),
        ("https://demo.ckan.io", None),
        ("https://catalog.data.gov", None),
        ("http://10.0.0.1", None),
        ("https://x.su", None),
    ],
)
def test_country_from_country_code_domain(url, country):
    assert country_of(url) == country


@pytest.mark.parametrize(
    "value, expected",
    [("en", "en"), ("EN_gb", "en-GB"), ("pt-br, en", "pt-BR"), ("zh-Hant", "zh-Hant"), ("", None), ("x", None)],
)
def test_language_tags(value, expected):
    assert normalize_language(value) == expected


def test_page_facts_prefers_site_name_and_reads_description_and_language():
    body = b"""<html lang="de-de"><head><title>Start - Offene Daten</title>
    <meta property="og:site_name" content="Offene Daten Hamburg">
    <meta name="description" content="  Daten   der Stadt "></head></html>"""
    response = HtmlResponse("https://x.de/", body=body, request=Request("https://x.de/"))
    assert page_facts(response) == {"title": "Offene Daten Hamburg", "description": "Daten der Stadt", "language": "de-DE"}


def test_page_facts_of_a_non_html_answer_are_unknown():
    from scrapy.http import Response

    assert page_facts(Response("https://x.de/", body=b"\x00\x01")) == {
        "title": None, "description": None, "language": None,
    }


def test_profiles_and_rate_limited_cached_geocoding(start_world, tmp_path):
    pool = spec.AddressPool("127.9.3.1")
    german = spec.ckan_portal(pool, hostname="data.stadt.de", locale_default="de", site_title="Stadt Daten")
    french = spec.ckan_portal(pool, hostname="data.gouv.fr", locale_default="fr")
    other_german = spec.ckan_portal(pool, hostname="opendata.land.de")
    world = start_world([german, french, other_german])
    urls = world.write_urls_file(tmp_path / "urls.txt")
    cache = tmp_path / "geocache.json"
    with GeocoderStandin() as geocoder:
        settings = {**world.scrapy_settings(), "GEOCODER_URL": geocoder.url, "GEOCODER_CACHE_FILE": cache}
        first = run_crawl("sites", tmp_path, args={"urls": urls}, settings=settings)
        asked = list(geocoder.requests)
        second = run_crawl("sites", tmp_path, args={"urls": urls}, settings=settings)
        asked_again = geocoder.requests[len(asked):]
    items = {item["home_url"].split("//")[1].split(":")[0]: item for item in first.items}
    stadt = items["data.stadt.de"]
    assert (stadt["home_title"], stadt["language"], stadt["country"]) == ("Welcome - Stadt Daten", "de", "DE")
    assert (stadt["latitude"], stadt["longitude"]) == (51.1638175, 10.4478313)
    gouv = items["data.gouv.fr"]
    assert (gouv["site_type"], gouv["country"], gouv["location"]) == ("Government", "FR", "FR")
    assert gouv["latitude"] == 46.603354
    # Two German sites, one question: the second is answered from the cache.
    assert sorted(q["country"] for _, q, _ in asked) == ["DE", "FR"]
    assert all("ckancrawl" in agent for _, _, agent in asked)
    gaps = [later - earlier for (earlier, _, _), (later, _, _) in zip(asked, asked[1:])]
    assert all(gap >= 0.95 for gap in gaps), gaps
    # The cache survives the run: the rerun asks nothing.
    assert asked_again == []
    assert json.loads(cache.read_text())
    assert {i["latitude"] for i in second.items} == {i["latitude"] for i in first.items}


def test_without_geocoder_no_coordinates(start_world, tmp_path):
    pool = spec.AddressPool("127.9.4.1")
    world = start_world([spec.ckan_portal(pool, hostname="data.stadt.de")])
    result = run_crawl("sites", tmp_path, args={"url": world.portals[0].listed_url}, settings=world.scrapy_settings())
    item = result.items[0]
    assert item["country"] == "DE"
    assert (item["location"], item["latitude"], item["longitude"]) == (None, None, None)


def test_a_script_shell_home_page_is_rendered_for_the_profile(tmp_path):
    """The home page is an application shell; with a rendering backend the profile reads
    what the browser shows, while the Action API search still uses the page as served."""
    from tests.rendering_pages import PageServer

    with PageServer() as pages:
        url = pages.url("/shell")
        rendered = run_crawl("sites", tmp_path, args={"url": url}, settings={"RENDERING_BACKEND": "playwright"})
        plain = run_crawl("sites", tmp_path, args={"url": url})
    assert rendered.returncode == 0, rendered.log[-2000:]
    assert rendered.items[0]["home_title"] == "Rendered by script"
    assert rendered.items[0]["failure"].startswith("not a ckan site")
    assert plain.items[0]["home_title"] == "Loading"
    assert plain.stats_value("rendering/no_backend") == "1"
