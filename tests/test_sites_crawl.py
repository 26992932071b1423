"""The ``sites`` spider against a simulated world of CKAN portals and faulty sites.

Each portal of the world knows what a correct crawler must record (its truth); the
tests compare the crawl's items with it value by value, reason by reason.
"""
from __future__ import annotations

import re

import pytest

from tests.crawl import run_crawl
from tests.world import spec

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def preset_crawl(preset_world, tmp_path_factory):
    """One crawl of one portal of every preset (shared: it takes a few seconds)."""
    preset_world.reset()
    tmp = tmp_path_factory.mktemp("preset-crawl")
    urls = preset_world.write_urls_file(tmp / "urls.txt")
    result = run_crawl("sites", tmp, args={"urls": urls}, settings=preset_world.scrapy_settings())
    return result, preset_world.stats()


def test_every_preset_is_recorded_as_its_truth(preset_world, preset_crawl):
    result, _ = preset_crawl
    assert result.returncode == 0, result.log[-3000:]
    wrong = {name: problems for name, problems in preset_world.judge(result.items).items() if problems}
    assert wrong == {}


def test_one_snapshot_per_site(preset_world, preset_crawl):
    result, _ = preset_crawl
    assert len(result.items) == len(preset_world.portals)
    assert len({item["site"] for item in result.items}) == len(result.items)


def test_one_run_timestamp_shared_by_all_items(preset_crawl):
    result, _ = preset_crawl
    stamps = {item["run_timestamp"] for item in result.items}
    assert len(stamps) == 1
    assert ISO_UTC.match(stamps.pop())


def test_unknown_is_null_never_zero(preset_world, preset_crawl):
    result, _ = preset_crawl
    failed = [item for item in result.items if item["status"] == "failed"]
    assert failed, "the world has failing sites"
    for item in failed:
        assert item["failure"], item
        for field in ("num_datasets", "num_organizations", "num_groups", "ckan_version", "extensions"):
            assert item[field] is None, (item["listed_url"], field)


def test_counts_past_the_list_cap(preset_world, preset_crawl):
    result, _ = preset_crawl
    items = result.by("listed_url")
    for preset in ("many_organizations", "old_uncapped", "paged_uncapped", "limit_crash"):
        portal = preset_world.by_preset(preset)[0]
        item = items[portal.listed_url]
        assert item["num_organizations"] == portal.truth.num_organizations > 1000, preset


def test_dataset_count_falls_back_to_package_list(preset_world, preset_crawl):
    result, _ = preset_crawl
    item = result.by("listed_url")[preset_world.by_preset("search_failing_409")[0].listed_url]
    assert item["num_datasets_method"] == "package_list"
    assert item["errors"]["package_search"].startswith("ckan error: package_search: Search Error")


def test_failure_reasons_read_like_sentences(preset_world, preset_crawl):
    result, _ = preset_crawl
    items = result.by("listed_url")

    def failure(preset):
        return items[preset_world.by_preset(preset)[0].listed_url]["failure"]

    assert failure("slow_site") == "timeout: no complete answer after 3 s"
    assert failure("unresolvable").startswith("dns: host name could not be resolved")
    assert failure("redirect_loop").startswith("redirect loop")
    assert failure("https_on_plain_port") == "tls: TLS handshake failed (wrong version number)"
    assert failure("not_ckan").startswith("not a ckan site: no CKAN Action API answered")


def test_at_most_four_requests_at_once_per_site(preset_crawl):
    _, stats = preset_crawl
    per_host = [host["max_in_flight"] for host in stats["hosts"].values()]
    assert per_host and max(per_host) <= 4


def test_rate_limited_site_is_measured_after_retry_after(preset_world, preset_crawl):
    result, _ = preset_crawl
    portal = preset_world.by_preset("rate_limited")[0]
    item = result.by("listed_url")[portal.listed_url]
    assert item["status"] == "ok"
    assert item["num_datasets"] == portal.truth.num_datasets


def test_stats_count_outcomes(preset_crawl):
    result, _ = preset_crawl
    failed = sum(1 for item in result.items if item["status"] == "failed")
    assert int(result.stats_value("sites/status/failed")) == failed


def test_single_url_argument(start_world, tmp_path):
    pool = spec.AddressPool("127.9.0.1")
    world = start_world([spec.PRESETS["sub_path"](pool)])
    portal = world.portals[0]
    result = run_crawl("sites", tmp_path, args={"url": portal.listed_url}, settings=world.scrapy_settings())
    assert [item["listed_url"] for item in result.items] == [portal.listed_url]
    assert portal.truth.mismatches(result.items[0]) == []
    assert result.items[0]["api_url"].endswith("/data/api/3/action/")


def test_urls_file_with_comments_and_junk(start_world, tmp_path):
    pool = spec.AddressPool("127.9.1.1")
    world = start_world([spec.PRESETS["ckan"](pool)])
    url = world.portals[0].listed_url
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# sites\n\n{url}  # the one portal\n{url}\nnot a url\n", encoding="utf-8")
    result = run_crawl("sites", tmp_path, args={"urls": urls}, settings=world.scrapy_settings())
    assert len(result.items) == 2
    bad = result.by("site")["not a url"]
    assert bad["failure"] == "bad url: 'not a url' is not an http(s) URL"
    assert result.by("listed_url")[url]["status"] == "ok"


def test_without_mongodb_the_feed_still_works_and_says_so(start_world, tmp_path):
    pool = spec.AddressPool("127.9.2.1")
    world = start_world([spec.PRESETS["ckan"](pool)])
    result = run_crawl("sites", tmp_path, args={"url": world.portals[0].listed_url}, settings=world.scrapy_settings())
    assert result.returncode == 0
    assert len(result.items) == 1
    assert result.log.count("MONGODB_URI is not set") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        ({"urls": "/nonexistent/urls.txt"}, "no such file"),
        ({"url": "ftp://example.org"}, "is not an http(s) URL"),
        ({"url": "http://a.test/", "urls": "x"}, "give only one of"),
        ({"run_timestamp": "yesterday"}, "is not an ISO 8601 UTC time"),
    ],
)
def test_bad_arguments_fail_fast_with_a_clear_message(tmp_path, args, message):
    result = run_crawl("sites", tmp_path, args=args, feed=False, timeout=60)
    assert result.returncode != 0
    assert message in result.log
