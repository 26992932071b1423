"""Scrapy add-on that installs the rendering backend named by ``RENDERING_BACKEND``.

Unset (the default): nothing is installed, ``meta["render"]`` is ignored. ``playwright``
or ``splash``: the backend's own pieces (download handler or middleware, its settings;
see ckancrawl/rendering/playwright.py and splash.py) and
:class:`~ckancrawl.rendering.middleware.RenderingMiddleware`. A backend that cannot
work here (no Chromium, no SPLASH_URL...) stops the crawl with a message at start.
"""
from __future__ import annotations

from typing import Any

from ckancrawl.rendering.backends import RenderOptions, backend_class


class RenderingAddon:
    def update_settings(self, settings: Any) -> None:
        name = settings.get("RENDERING_BACKEND")
        if not name:
            return
        RenderOptions.from_settings(settings)  # refuses impossible timings early
        backend_class(name).configure(settings)
        from ckancrawl.rendering.middleware import ORDER, RenderingMiddleware

        settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", RenderingMiddleware, ORDER)
