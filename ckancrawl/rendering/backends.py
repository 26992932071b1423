"""The rendering backends by name, and the options they share.

A backend is a class with:

- ``name``;
- ``configure(settings)`` (static): called by the add-on; installs what the backend needs
  (download handler or middleware, its own settings) or raises RenderingConfigError;
- ``__init__(settings)``, then per request ``prepare(request)`` (turn a request marked
  ``meta["render"]`` into one the backend renders), ``error_of(request, response)`` (a
  rendering failure hidden in a response, as an exception, or None) and
  ``translate(exception)`` (a backend exception as Scrapy's own, or None).

Settings read here: ``RENDERING_WAIT`` (0.5 s after the page's load event, for scripts
that fill the page from timers or XHR), ``RENDERING_TIMEOUT`` (default
``DOWNLOAD_TIMEOUT``: the whole render of one page), ``RENDERING_CONCURRENCY`` (4: pages
rendered at once by one process).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapy.utils.misc import load_object

from ckancrawl.rendering.errors import RenderingConfigError

BACKENDS = {
    "playwright": "ckancrawl.rendering.playwright.PlaywrightBackend",
    "splash": "ckancrawl.rendering.splash.SplashBackend",
}


@dataclass(frozen=True)
class RenderOptions:
    wait: float
    timeout: float
    concurrency: int

    @classmethod
    def from_settings(cls, settings: Any) -> "RenderOptions":
        timeout = settings.getfloat("RENDERING_TIMEOUT") or settings.getfloat("DOWNLOAD_TIMEOUT", 180.0)
        wait = max(0.0, settings.getfloat("RENDERING_WAIT", 0.5))
        if wait >= timeout:
            raise RenderingConfigError(
                f"RENDERING_WAIT ({wait:g} s) must be shorter than RENDERING_TIMEOUT ({timeout:g} s)"
            )
        return cls(wait=wait, timeout=timeout, concurrency=max(1, settings.getint("RENDERING_CONCURRENCY", 4)))


def backend_class(name: str) -> Any:
    path = BACKENDS.get(name.strip().lower())
    if path is None:
        raise RenderingConfigError(
            f"RENDERING_BACKEND={name!r} is not a rendering backend: use {' or '.join(BACKENDS)}, "
            "or leave it unset to render nothing"
        )
    return load_object(path)
