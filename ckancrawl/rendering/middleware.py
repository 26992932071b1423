"""Downloader middleware: a request with ``meta["render"] = True`` is rendered by a browser.

The backend is ``RENDERING_BACKEND`` (``playwright`` or ``splash``; see
ckancrawl/rendering/backends.py). Without it the middleware is off and ``render`` is
ignored: the page is fetched as it is. It works the same for scheduled requests and
for :meth:`~ckancrawl.spiders.ckan_api.CkanApiSpider.fetch` (``fetch(url,
render=True)``).

A rendered response carries the flag ``"rendered"`` and ``meta["rendered_by"]`` (the
backend); a failed render raises a download exception (see the backend), after the
retry middleware had its chance (this middleware sits at 540, below it).

Stats: ``rendering/<backend>/requests``, ``rendering/<backend>/rendered``,
``rendering/<backend>/failed/<exception>``.
"""
from __future__ import annotations

from typing import Any

from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response

from ckancrawl.rendering.backends import backend_class

#: Order in DOWNLOADER_MIDDLEWARES: before scrapy-splash's (725) on the way out, after
#: the retry middleware (550) on the way back.
ORDER = 540


class RenderingMiddleware:
    def __init__(self, crawler: Any, backend: Any) -> None:
        self.crawler = crawler
        self.backend = backend

    @classmethod
    def from_crawler(cls, crawler: Any) -> "RenderingMiddleware":
        name = crawler.settings.get("RENDERING_BACKEND")
        if not name:
            raise NotConfigured("RENDERING_BACKEND is not set")
        return cls(crawler, backend_class(name)(crawler.settings))

    def process_request(self, request: Request) -> None:
        if not request.meta.get("render") or request.meta.get("rendered_by"):
            return None
        request.meta["rendered_by"] = self.backend.name
        # A page and its scripts take far longer than the site's answers: keep that out
        # of the site's AutoThrottle delay.
        request.meta["autothrottle_dont_adjust_delay"] = True
        self.backend.prepare(request)
        self._count("requests")
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        if not request.meta.get("rendered_by"):
            return response
        error = self.backend.error_of(request, response)
        if error is not None:
            self._count(f"failed/{type(error).__name__}")
            raise error
        self._count("rendered")
        if "rendered" not in response.flags:
            response.flags.append("rendered")
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        if not request.meta.get("rendered_by"):
            return None
        translated = self.backend.translate(exception)
        self._count(f"failed/{type(translated or exception).__name__}")
        if translated is not None:
            raise translated from exception
        return None

    def _count(self, what: str) -> None:
        self.crawler.stats.inc_value(f"rendering/{self.backend.name}/{what}")
