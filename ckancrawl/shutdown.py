"""Whether the crawl is stopping, for work that should not start any more.

Scrapy closes a spider only once every callback in progress has returned and every
item has left the pipelines. A harvest callback pages a whole portal, and the resource
facts pipeline downloads every resource of a dataset: left alone, a cancelled job
(scrapyd cancel, Ctrl-C, CLOSESPIDER_*) would run on for as long as that takes. Code
that is about to fetch asks :func:`is_closing` first and records the work it skips as
``stopped`` (an unknown, never a value).
"""
from __future__ import annotations

from typing import Any

from ckancrawl.failures import FetchError


def is_closing(crawler: Any) -> bool:
    """True once the crawl was told to stop (signal, scrapyd cancel, CloseSpider)."""
    if crawler is None:
        return False
    if not getattr(crawler, "crawling", True):
        return True
    # The engine has no public "closing" flag; close_spider sets its slot's first.
    slot = getattr(getattr(crawler, "engine", None), "_slot", None)
    return getattr(slot, "closing", None) is not None


def stopped(what: str) -> FetchError:
    return FetchError("stopped", f"the crawl is stopping; {what} was not fetched")
