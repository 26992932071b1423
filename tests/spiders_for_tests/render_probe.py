"""Fetch pages and render them when they need it, to test ckancrawl.rendering in a real crawl.

``scrapy runspider tests/spiders_for_tests/render_probe.py -a urls=URL,URL -a render=URL,URL``

- ``urls``: each page is requested, then given to
  :func:`ckancrawl.rendering.render_if_needed` (``fetch(url, render=True)``), the way a
  spider that holds a home page uses it (items with ``mode`` ``fetch``);
- ``render``: each page is requested with ``meta["render"] = True`` directly, as a
  scheduled request (items with ``mode`` ``meta``).

One item per URL: ``url``, ``status``, ``title`` and ``h1`` as received (``*_before``
too in fetch mode), ``reason`` (why it needed rendering), ``rendered``, ``error``.
"""
from __future__ import annotations

from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from ckancrawl.failures import describe_exception
from ckancrawl.rendering import render_if_needed
from ckancrawl.spiders.ckan_api import ERROR_STATUSES, CkanApiSpider


def _page(response: Response) -> dict[str, Any]:
    text = hasattr(response, "xpath")
    return {
        "status": response.status,
        "title": response.xpath("normalize-space(//title)").get() if text else None,
        "h1": response.xpath("normalize-space(//h1)").get() if text else None,
        "rendered": "rendered" in response.flags,
    }


def _asked(request: scrapy.Request) -> str:
    """The page's URL (scrapy-splash rewrites the request to go to Splash)."""
    return request.meta.get("splash", {}).get("args", {}).get("url", request.url)


class RenderProbe(CkanApiSpider):
    name = "render_probe"

    def __init__(self, urls: str = "", render: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = [(url, False) for url in urls.split(",") if url] + [(url, True) for url in render.split(",") if url]

    async def start(self):
        for url, render in self.pages:
            yield scrapy.Request(
                url, callback=self.page, errback=self.failed, dont_filter=True,
                meta={"handle_httpstatus_list": ERROR_STATUSES, "render": render},
            )

    async def page(self, response: Response):
        if response.meta.get("render"):
            yield {"url": _asked(response.request), "mode": "meta", **_page(response), "error": None}
            return
        page = await render_if_needed(self, response)
        before = {f"{key}_before": value for key, value in _page(response).items()}
        yield {"url": response.url, "mode": "fetch", **before, **_page(page.response), "reason": page.reason,
               "error": str(page.error) if page.error else None}

    def failed(self, failure: Failure):
        error = describe_exception(failure, self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))
        mode = "meta" if failure.request.meta.get("render") else "fetch"
        yield {"url": _asked(failure.request), "mode": mode, "rendered": False, "error": str(error)}
