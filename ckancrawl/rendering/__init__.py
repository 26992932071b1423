"""JavaScript-rendered pages: rendering is opt-in, per request, behind a setting.

- :func:`needs_rendering` (decision.py): does a fetched page need a browser (empty
  body, a noscript or script-only shell)? The reason, or None.
- ``meta["render"] = True`` on a request (scheduled or passed to ``fetch()``): rendered
  by the backend in ``RENDERING_BACKEND`` (middleware.py); ignored when it is unset.
- :func:`render_if_needed` (fetch.py): for a spider holding a fetched page, the two
  together.
- :class:`RenderingAddon` (in ``ADDONS``): installs the backend: ``playwright``
  (scrapy-playwright and Debian's Chromium, playwright.py) or ``splash`` (a Splash
  server through scrapy-splash, made to work with Scrapy 2.19, splash.py).

Settings (see README.md): ``RENDERING_BACKEND``, ``RENDERING_WAIT``,
``RENDERING_TIMEOUT``, ``RENDERING_CONCURRENCY``, ``RENDERING_CHROMIUM``,
``SPLASH_URL``.
"""
from ckancrawl.rendering.addon import RenderingAddon
from ckancrawl.rendering.decision import needs_rendering
from ckancrawl.rendering.fetch import Rendered, render_if_needed

__all__ = ["RenderingAddon", "Rendered", "needs_rendering", "render_if_needed"]
