"""Whether the crawl is stopping, for work that should not start any more.

Scrapy closes a spider only once every callback in progress has returned and every
item has left the pipelines. A harvest callback pages a whole portal, and the resource
facts pipeline downloads every resource of a dataset: left alone, a cancelled job
(scrapyd cancel, Ctrl-C, CLOSESPIDER_*) would run on for as long as that takes. Code
that is about to fetch asks :func:`is_closing` first and records the work it skips as
``stopped`` (an unknown, never a value).
"""
from __future__ import annotations

import asyncio
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


def stop_crawl(crawler: Any, reason: str) -> None:
    """Close the spider with ``reason`` (its finish reason), from anywhere in the crawl.

    As Scrapy's own graceful stop (Ctrl-C) does, ``start()`` is read no further: its
    items would otherwise keep coming after the pipelines closed. Scrapy 2.19's scraper
    notices that it has become idle only when a response's callback ends, so when the
    last thing in hand is an item from ``start()`` the close would wait forever: while
    the close is under way, the scraper is asked again every 0.1 s. (Both through
    private attributes: Scrapy has no public way to close with a reason of one's own.)
    """
    engine = getattr(crawler, "engine", None)
    if engine is None or engine.spider is None:
        return
    reading_start = getattr(engine, "_start_request_processing_awaitable", None)
    if reading_start is not None:
        reading_start.cancel()  # a no-op once start() is read to its end
    closing = asyncio.ensure_future(engine.close_spider_async(reason=reason))

    async def nudge() -> None:
        while not closing.done():
            await asyncio.sleep(0.1)
            slot = getattr(engine.scraper, "slot", None)
            waiting = getattr(slot, "closing", None)
            if waiting is not None and not waiting.called:
                engine.scraper._check_if_closing()

    asyncio.ensure_future(nudge())
