"""What the catalog-writing components share: when they are on, which catalog, the key."""
from __future__ import annotations

import logging
from typing import Any

from scrapy.exceptions import NotConfigured

from ckancrawl.catalog.client import API_KEY_VARIABLE, api_key_from_env


def api_key_or_not_configured(settings: Any, enabled_setting: str, what: str, logger: logging.Logger) -> str:
    """The API key when ``enabled_setting`` is true and CKAN_API_KEY is set; otherwise
    log one line saying why ``what`` is off and raise NotConfigured."""
    if not settings.getbool(enabled_setting, False):
        logger.info("%s is off (%s is not set)", what, enabled_setting)
        raise NotConfigured
    key = api_key_from_env()
    if key is None:
        logger.warning("%s is off: %s is set but %s is not in the environment; export the API token of a "
                       "catalog user who may edit the datasets", what, enabled_setting, API_KEY_VARIABLE)
        raise NotConfigured
    return key


def catalog_url(crawler: Any) -> str:
    """The catalog the spider read its work from (``-a catalog=``), else CATALOG_URL."""
    spider = getattr(crawler, "spider", None)
    # CatalogSpider.catalog_url raises ValueError with a clear message for a bad URL.
    url = getattr(spider, "catalog_url", None) or crawler.settings.get("CATALOG_URL")
    if not url or not str(url).startswith(("http://", "https://")):
        raise ValueError(f"CATALOG_URL={url!r} is not an http(s) URL")
    return str(url).rstrip("/")
