"""The resource facts pipeline without a network: shapes of datasets, settings."""
from __future__ import annotations

import asyncio

import pytest
from scrapy.utils.test import get_crawler

from ckancrawl.items import HarvestedDataset, SiteSnapshot
from ckancrawl.pipelines.resource_facts import ResourceFactsPipeline

PUBLIC_KEYS = {
    "index", "resource_id", "url", "url_normalized", "declared_format", "url_format_hint", "method", "status",
    "final_url", "redirects", "content_type", "content_encoding", "content_length", "size", "size_source", "md5",
    "md5_skipped", "error", "formats", "format", "format_source",
}


def pipeline(**settings) -> ResourceFactsPipeline:
    crawler = get_crawler(settings_dict={"RESOURCE_FACTS": "none", **settings})
    crawler.stats.open_spider()
    return ResourceFactsPipeline.from_crawler(crawler)


def harvested(raw: dict, portal: str = "https://portal.example") -> HarvestedDataset:
    return HarvestedDataset(portal=portal, dataset_id=raw.get("id", "d1"), name="n", metadata_modified=None, raw=raw,
                            content_hash="sha256:0", harvested_at="2026-11-23T00:00:00Z")


def process(p: ResourceFactsPipeline, item):
    return asyncio.run(p.process_item(item))


def test_every_resource_gets_every_key_in_none_mode():
    item = process(pipeline(), harvested({"id": "d1", "resources": [
        {"id": "r1", "url": "https://files.example/a/report.PDF", "format": "Excel"},
        {"id": "r2", "url": "", "format": "CSV"},
    ]}))
    first, second = item.resource_facts
    assert set(first) == PUBLIC_KEYS and set(second) == PUBLIC_KEYS
    assert (first["method"], first["format"], first["format_source"]) == ("none", "PDF", "extension")
    assert first["formats"] == {"magic": None, "content_type": None, "extension": "PDF", "declared": "XLS"}
    assert (second["error"], second["format"], second["method"]) == ("no url: the resource has no URL", "CSV", None)


def test_an_uploaded_file_with_a_bare_name_is_found_where_ckan_serves_uploads():
    item = process(pipeline(), harvested({"id": "d1", "resources": [
        {"id": "r9", "url": "tables 2024.csv", "url_type": "upload"}]}))
    assert item.resource_facts[0]["url_normalized"] == (
        "https://portal.example/dataset/d1/resource/r9/download/tables%202024.csv")


def test_datasets_without_resources_get_an_empty_list_and_odd_shapes_none():
    p = pipeline()
    assert process(p, harvested({"id": "d1"})).resource_facts == []
    assert process(p, harvested({"id": "d2", "resources": {"url": "x"}})).resource_facts is None
    assert process(p, harvested({"id": "d3", "resources": ["http://a.example/x.csv", 7]})).resource_facts[0]["format"] == "CSV"


def test_other_items_pass_through_untouched():
    site = SiteSnapshot(site="s", run_timestamp="t", source="url")
    assert process(pipeline(), site) is site


def test_a_failure_inside_costs_one_resource_its_facts_not_the_dataset(monkeypatch):
    p = pipeline()

    async def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(p, "facts", broken)
    [fact] = process(p, harvested({"id": "d1", "resources": [{"url": "http://a.example/x.csv"}]})).resource_facts
    assert fact["error"] == "error: RuntimeError: bug"
    assert fact["format"] == "CSV" and set(fact) == PUBLIC_KEYS


@pytest.mark.parametrize("settings, message", [
    ({"RESOURCE_FACTS": "everything"}, "RESOURCE_FACTS='everything': choose one of none, head, full"),
    ({"RESOURCE_MAX_BYTES": "0"}, "RESOURCE_MAX_BYTES must be positive"),
    ({"RESOURCE_FACTS": "head"}, "needs the resource download handler"),
])
def test_wrong_settings_stop_the_crawl_with_a_clear_message(settings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        pipeline(**settings)
