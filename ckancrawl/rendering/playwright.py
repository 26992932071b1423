"""Rendering with scrapy-playwright 0.0.48 driving Debian's Chromium.

``configure`` installs scrapy-playwright's download handler for http and https (it
passes every request without ``meta["playwright"]`` to Scrapy's own HTTP/1.1 handler)
and launches ``RENDERING_CHROMIUM`` (``/usr/bin/chromium``; ``playwright install``
cannot download browsers here) headless with :data:`CHROMIUM_FLAGS`. Chromium starts
on the first rendered page, not before. One browser context, at most
``RENDERING_CONCURRENCY`` pages at once; images, media and fonts are not loaded (they
do not change the page's text).

A rendered request goes to its site's download slot like any other (per-site
concurrency holds) but does not feed AutoThrottle: a page with its scripts takes far
longer than the site's answers do. The browser does its own DNS and connections, so
Scrapy's ``TWISTED_DNS_RESOLVER`` does not apply to rendered pages.

Chromium's network errors are translated to Scrapy's download exceptions
(``net::ERR_NAME_NOT_RESOLVED`` is a DNS failure, and so on), so a failed render reads
like a failed download in the spider's records.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from typing import Any

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

HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
#: The project's handler for http(s) (resource downloads); it chains to HANDLER.
RESOURCE_HANDLER = "ckancrawl.resources.download_handler.ResourceDownloadHandler"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
CONTEXT = "ckancrawl-rendering"

_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")
_NET_ERRORS: dict[str, type[Exception]] = {
    "ERR_NAME_NOT_RESOLVED": CannotResolveHostError,
    "ERR_NAME_RESOLUTION_FAILED": CannotResolveHostError,
    "ERR_CONNECTION_REFUSED": DownloadConnectionRefusedError,
    "ERR_ADDRESS_UNREACHABLE": DownloadConnectionRefusedError,
    "ERR_TIMED_OUT": DownloadTimeoutError,
    "ERR_CONNECTION_TIMED_OUT": DownloadTimeoutError,
    "ERR_CONNECTION_RESET": DownloadFailedError,
    "ERR_CONNECTION_CLOSED": DownloadFailedError,
    "ERR_CONNECTION_ABORTED": DownloadFailedError,
    "ERR_EMPTY_RESPONSE": DownloadFailedError,
    "ERR_INCOMPLETE_CHUNKED_ENCODING": DownloadFailedError,
}


class _QuietFailedPages(logging.Filter):
    """scrapy-playwright logs every page that failed to load as a WARNING with a
    traceback; the middleware records the failure already (a dead site is not an error
    of the crawl), so those records go to DEBUG, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith("Closing page due to failed request"):
            record.levelno, record.levelname, record.exc_info, record.exc_text = logging.DEBUG, "DEBUG", None, None
        return True


_QUIET = _QuietFailedPages()


def skip_heavy_resources(request: Any) -> bool:
    """PLAYWRIGHT_ABORT_REQUEST: what the browser need not load to show the text."""
    return request.resource_type in ("image", "media", "font")


class PlaywrightBackend:
    name = "playwright"

    @staticmethod
    def configure(settings: Any) -> None:
        chromium = settings.get("RENDERING_CHROMIUM") or DEFAULT_CHROMIUM
        if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)) and not shutil.which(chromium):
            raise RenderingConfigError(
                f"RENDERING_BACKEND=playwright needs Chromium at {chromium}: install it "
                "(apt-get install -y chromium) or set RENDERING_CHROMIUM to the browser's path"
            )
        try:
            import scrapy_playwright  # noqa: F401
        except ImportError:
            raise RenderingConfigError(
                "RENDERING_BACKEND=playwright needs scrapy-playwright: pip install scrapy-playwright==0.0.48"
            ) from None
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        if all(handlers.get(scheme) == RESOURCE_HANDLER for scheme in ("http", "https")):
            # The resource handler streams resource downloads itself and passes every
            # other request on to the handler it is given: the two chain.
            settings.set("RESOURCE_NEXT_HANDLER", HANDLER, get_settings_priority("addon"))
        else:
            for scheme in ("http", "https"):
                current = handlers.get(scheme)
                if current not in (None, HANDLER):
                    raise RenderingConfigError(
                        f"RENDERING_BACKEND=playwright needs scrapy-playwright's download handler for {scheme}, "
                        f"but DOWNLOAD_HANDLERS gives {current!r}"
                    )
                handlers[scheme] = HANDLER
            priority = max(settings.getpriority("DOWNLOAD_HANDLERS") or 0, get_settings_priority("addon"))
            settings.set("DOWNLOAD_HANDLERS", handlers, priority)
        options = RenderOptions.from_settings(settings)
        logging.getLogger("scrapy-playwright").addFilter(_QUIET)
        for name, value in {
            "PLAYWRIGHT_BROWSER_TYPE": "chromium",
            "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": chromium, "headless": True, "args": CHROMIUM_FLAGS},
            "PLAYWRIGHT_MAX_CONTEXTS": 1,
            "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": options.concurrency,
            "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": options.timeout * 1000,
            "PLAYWRIGHT_ABORT_REQUEST": "ckancrawl.rendering.playwright.skip_heavy_resources",
        }.items():
            settings.set(name, value, "addon")

    def __init__(self, settings: Any) -> None:
        self.options = RenderOptions.from_settings(settings)

    def prepare(self, request: Request) -> None:
        from scrapy_playwright.page import PageMethod

        meta = request.meta
        meta["playwright"] = True
        meta["playwright_context"] = CONTEXT
        meta["playwright_page_goto_kwargs"] = {"wait_until": "load", "timeout": self.options.timeout * 1000}
        if self.options.wait:
            meta["playwright_page_methods"] = [PageMethod("wait_for_timeout", self.options.wait * 1000)]

    def error_of(self, request: Request, response: Response) -> Exception | None:
        return None

    def translate(self, exception: BaseException) -> Exception | None:
        from playwright.async_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout

        if isinstance(exception, PlaywrightTimeout):
            return DownloadTimeoutError(f"the browser gave up after {self.options.timeout:g} s")
        if not isinstance(exception, PlaywrightError):
            return None
        message = str(exception).splitlines()[0] if str(exception) else type(exception).__name__
        found = _NET_ERROR.search(message)
        code = found.group(1) if found else ""
        if code in _NET_ERRORS:
            return _NET_ERRORS[code](f"{code} ({message})")
        if code.startswith(("ERR_SSL_", "ERR_CERT_", "ERR_BAD_SSL")):
            return BrowserSSLError(f"{code} ({message})")
        if code == "ERR_TOO_MANY_REDIRECTS":
            return IgnoreRequest(f"redirect loop: the browser stopped after too many redirects ({message})")
        return RenderingError(f"Chromium could not render the page: {message}")
