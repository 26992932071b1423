"""Rendering with a Splash server through scrapy-splash 0.11.1, made to work with Scrapy 2.19.

What scrapy-splash 0.11.1 needs on Scrapy 2.19, and what is done here:

- Its package imports ``canonicalize_url`` from ``scrapy.utils.url``, which Scrapy no
  longer has (it is w3lib's): :func:`import_scrapy_splash` puts w3lib's function back
  under that name, if missing, before importing it. Nothing else of Scrapy is touched.
- Its middleware methods require the ``spider`` argument that Scrapy 2.19 deprecates:
  :class:`SplashMiddleware` takes it as optional.
- Its ``per_domain`` slot policy calls a downloader method Scrapy 2.19 removed:
  ``SPLASH_SLOT_POLICY = "scrapy_default"`` (the Splash server's own download slot,
  with ``RENDERING_CONCURRENCY`` renders at once). Another policy is refused.
- Its dedupe middleware and dupe filter are not used: they only shrink queues of
  requests carrying large Splash arguments (Lua scripts), which ckancrawl never sends,
  and the dupe filter replaces Scrapy's.
- Start requests come from ``async def start()`` like any other request: only
  ``meta["render"] = True`` is needed, ``SplashRequest`` is not.

Requests are sent to Splash's ``render.html`` with ``wait`` (RENDERING_WAIT) and
``timeout`` (RENDERING_TIMEOUT); Splash's error answers become exceptions: 504
``GlobalTimeoutError`` a timeout, 502 ``RenderError`` network errors the matching
download failure (host not found, connection refused...), anything else a
:class:`~ckancrawl.rendering.errors.RenderingError` with Splash's own description.

Settings: ``SPLASH_URL`` (required, the Splash server), scrapy-splash's ``SPLASH_USER``
and ``SPLASH_PASS`` if the server wants HTTP auth.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Request, Response
from scrapy.settings import get_settings_priority

from ckancrawl.rendering.backends import RenderOptions
from ckancrawl.rendering.errors import BrowserSSLError, RenderingConfigError, RenderingError

SLOT_POLICY = "scrapy_default"

#: Splash reports page load failures with Qt's QNetworkReply error codes.
_QT_NETWORK_ERRORS: dict[int, type[Exception]] = {
    1: DownloadConnectionRefusedError,  # ConnectionRefusedError
    2: DownloadFailedError,  # RemoteHostClosedError
    3: CannotResolveHostError,  # HostNotFoundError
    4: DownloadTimeoutError,  # TimeoutError
    5: DownloadTimeoutError,  # OperationCanceledError (resource_timeout)
    6: BrowserSSLError,  # SslHandshakeFailedError
}


def import_scrapy_splash() -> Any:
    import scrapy.utils.url

    if not hasattr(scrapy.utils.url, "canonicalize_url"):
        from w3lib.url import canonicalize_url

        scrapy.utils.url.canonicalize_url = canonicalize_url  # type: ignore[attr-defined]
    import scrapy_splash

    return scrapy_splash


_scrapy_splash = import_scrapy_splash()


class SplashMiddleware(_scrapy_splash.SplashMiddleware):
    """scrapy-splash's downloader middleware with Scrapy 2.19's method signatures."""

    def process_request(self, request: Request, spider: Any = None) -> Any:
        return super().process_request(request, spider or self.crawler.spider)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Any:
        return super().process_response(request, response, spider or self.crawler.spider)


class SplashBackend:
    name = "splash"

    @staticmethod
    def configure(settings: Any) -> None:
        url = settings.get("SPLASH_URL")
        if not url or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise RenderingConfigError(
                "RENDERING_BACKEND=splash needs SPLASH_URL, the address of a Splash server "
                "(for example http://127.0.0.1:8050)"
            )
        if settings.get("SPLASH_SLOT_POLICY", SLOT_POLICY) != SLOT_POLICY:
            raise RenderingConfigError(
                f"SPLASH_SLOT_POLICY={settings.get('SPLASH_SLOT_POLICY')!r} does not work with Scrapy 2.19; "
                f"remove it (ckancrawl uses {SLOT_POLICY!r})"
            )
        settings.set("SPLASH_SLOT_POLICY", SLOT_POLICY, "addon")
        options = RenderOptions.from_settings(settings)
        slots = settings.getdict("DOWNLOAD_SLOTS")
        slots.setdefault(urlsplit(url).hostname, {"concurrency": options.concurrency})
        priority = max(settings.getpriority("DOWNLOAD_SLOTS") or 0, get_settings_priority("addon"))
        settings.set("DOWNLOAD_SLOTS", slots, priority)
        settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", SplashMiddleware, 725)

    def __init__(self, settings: Any) -> None:
        self.options = RenderOptions.from_settings(settings)

    def prepare(self, request: Request) -> None:
        request.meta["splash"] = {
            "endpoint": "render.html",
            "args": {"wait": self.options.wait, "timeout": self.options.timeout},
        }

    def error_of(self, request: Request, response: Response) -> Exception | None:
        status = getattr(response, "splash_response_status", response.status)
        if status == 200:
            return None
        error = _error_body(response)
        kind = error.get("type") or "unknown error"
        info = error.get("info") if isinstance(error.get("info"), dict) else {}
        url = request.meta.get("splash", {}).get("args", {}).get("url", request.url)
        if status == 504:
            after = info.get("timeout", self.options.timeout)
            return DownloadTimeoutError(f"Splash gave up rendering {url} after {after} s ({kind})")
        if status == 502 and kind == "RenderError" and info.get("type") == "Network":
            text = f"Splash: {info.get('text')} (network error {info.get('code')}) at {url}"
            if info.get("code") == 10:  # TooManyRedirectsError
                return IgnoreRequest(f"redirect loop: {text}")
            return _QT_NETWORK_ERRORS.get(info.get("code"), RenderingError)(text)
        described = error.get("description") or "no description"
        details = f": {json.dumps(info, sort_keys=True)[:300]}" if info else ""
        return RenderingError(f"Splash answered HTTP {status} {kind} ({described}) for {url}{details}")

    def translate(self, exception: BaseException) -> Exception | None:
        return None


def _error_body(response: Response) -> dict[str, Any]:
    data = getattr(response, "data", None)
    if data is None:
        try:
            data = json.loads(response.body)
        except ValueError:
            return {"type": f"HTTP {response.status}", "description": response.body[:200].decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {}
