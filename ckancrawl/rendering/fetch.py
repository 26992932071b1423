"""For a spider that has fetched a page: render it when it needs a browser.

::

    from ckancrawl.rendering import render_if_needed

    page = await render_if_needed(self, home)   # self: a CkanApiSpider
    page.response   # the rendered page, or ``home`` when no rendering was needed or possible
    page.reason     # why it needed rendering ("empty body", "noscript shell", ...) or None
    page.rendered   # True when page.response came from the browser
    page.error      # the FetchError of a render that failed (page.response is then ``home``)

The page is rendered with ``spider.fetch(url, render=True)`` (so it goes through the
downloader, its per-site slot and retries) when :func:`needs_rendering` says so and a
backend is configured (``RENDERING_BACKEND``). Without a backend nothing is fetched and
``page.reason`` still says what was missed.

Stats: ``rendering/needed/<reason>``, ``rendering/no_backend``, ``rendering/failed/<kind>``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapy.http import Response

from ckancrawl.failures import FetchError
from ckancrawl.rendering.decision import needs_rendering


@dataclass
class Rendered:
    response: Response
    reason: str | None = None
    error: FetchError | None = None

    @property
    def rendered(self) -> bool:
        return "rendered" in self.response.flags


async def render_if_needed(spider: Any, response: Response) -> Rendered:
    reason = needs_rendering(response)
    if reason is None:
        return Rendered(response)
    stats = spider.crawler.stats
    stats.inc_value(f"rendering/needed/{reason}")
    if not spider.crawler.settings.get("RENDERING_BACKEND"):
        stats.inc_value("rendering/no_backend")
        return Rendered(response, reason)
    try:
        rendered = await spider.fetch(response.url, render=True)
    except FetchError as error:
        stats.inc_value(f"rendering/failed/{error.kind}")
        return Rendered(response, reason, error)
    return Rendered(rendered, reason)
