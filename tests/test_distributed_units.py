"""Distributed mode without processes: the add-on's settings, run names, claims, clients."""
from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.settings import Settings
from scrapy.utils.request import RequestFingerprinter

from ckancrawl.distributed import DistributedAddon
from ckancrawl.distributed.connection import async_client, sync_client
from ckancrawl.distributed.keys import DistributedConfigError, RunKeys, run_name
from ckancrawl.distributed.seeding import SeedOnceMiddleware, claim_key
from ckancrawl.distributed.workers import WorkerRegistry
from ckancrawl.items import SiteSnapshot


def settings_after_addon(**values: object) -> Settings:
    settings = Settings(values)
    DistributedAddon().update_settings(settings)
    return settings


def test_addon_changes_nothing_without_a_redis_url():
    settings = settings_after_addon()
    assert settings["SCHEDULER"] == "scrapy.core.scheduler.Scheduler"
    assert settings["DUPEFILTER_CLASS"] == "scrapy.dupefilters.RFPDupeFilter"
    assert settings.getdict("EXTENSIONS") == {}


def test_addon_shares_scheduler_and_dupefilter_under_the_run_name():
    settings = settings_after_addon(CKANCRAWL_REDIS_URL="redis://10.0.0.5:6379/2", CKANCRAWL_REDIS_RUN="week-47")
    assert settings["SCHEDULER"] == "ckancrawl.distributed.scheduler.RedisScheduler"
    assert settings["DUPEFILTER_CLASS"] == "ckancrawl.distributed.dupefilter.RedisDupeFilter"
    assert settings["SCHEDULER_QUEUE_KEY"] == "ckancrawl:%(spider)s:week-47:requests"
    assert settings.getdict("SPIDER_MIDDLEWARES") == {SeedOnceMiddleware: 50}
    assert settings.getdict("EXTENSIONS") == {WorkerRegistry: 500}


def test_addon_leaves_a_component_the_project_switched_off():
    settings = settings_after_addon(
        CKANCRAWL_REDIS_URL="redis://127.0.0.1:6379/0",
        EXTENSIONS={"ckancrawl.distributed.workers.WorkerRegistry": None},
    )
    assert settings.getdict("EXTENSIONS") == {"ckancrawl.distributed.workers.WorkerRegistry": None}


def test_addon_refuses_a_scheduler_that_would_keep_the_crawl_local():
    settings = Settings({"CKANCRAWL_REDIS_URL": "redis://127.0.0.1:6379/0"})
    settings.set("SCHEDULER", "scrapy.core.scheduler.Scheduler", "project")
    with pytest.raises(DistributedConfigError, match="remove SCHEDULER from the settings"):
        DistributedAddon().update_settings(settings)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "127.0.0.1:6379"])
def test_addon_refuses_what_is_not_a_redis_url(url):
    with pytest.raises(DistributedConfigError, match="not a Redis URL"):
        settings_after_addon(CKANCRAWL_REDIS_URL=url)


@pytest.mark.parametrize("name", ["a b", "../x", "x%(spider)s", "", "-lead", "x" * 101])
def test_run_names_are_plain_words(name):
    if name == "":
        assert run_name(name) == "default"
        return
    with pytest.raises(DistributedConfigError, match="not a usable run name"):
        run_name(name)


def test_run_keys_share_one_prefix_per_spider_and_run():
    keys = RunKeys.of("sites", "week-47")
    assert {key.rsplit(":", 1)[0] for key in keys.run_state()} == {"ckancrawl:sites:week-47"}
    assert keys.seeder not in keys.kept()


def test_the_redis_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CKANCRAWL_REDIS_PASSWORD", "from-env")
    assert sync_client("redis://127.0.0.1:6379/0").connection_pool.connection_kwargs["password"] == "from-env"
    assert async_client("redis://127.0.0.1:6379/0").connection_pool.connection_kwargs["password"] == "from-env"


fingerprinter = RequestFingerprinter()


def test_the_same_start_request_claims_the_same_key():
    assert claim_key(Request("http://a.test/"), fingerprinter) == claim_key(Request("http://a.test/"), fingerprinter)


def test_two_listings_of_one_url_are_two_claims():
    first = Request("http://a.test/", cb_kwargs={"site": "catalog-entry-1"})
    second = Request("http://a.test/", cb_kwargs={"site": "catalog-entry-2"})
    assert claim_key(first, fingerprinter) != claim_key(second, fingerprinter)


def test_a_spider_may_name_the_claim():
    request = Request("http://a.test/?page=2", meta={"distributed_key": "site:a"})
    assert claim_key(request, fingerprinter) == "k:site:a"


def test_start_items_are_claimed_by_their_fields():
    one = SiteSnapshot(site="a", run_timestamp="2026-11-22T03:00:00Z", source="urls", listed_url="x")
    same = SiteSnapshot(site="a", run_timestamp="2026-11-22T03:00:00Z", source="urls", listed_url="x")
    other = SiteSnapshot(site="b", run_timestamp="2026-11-22T03:00:00Z", source="urls", listed_url="x")
    assert claim_key(one, fingerprinter) == claim_key(same, fingerprinter) != claim_key(other, fingerprinter)
