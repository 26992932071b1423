"""A stand-in for a Splash 3.5 server's render.html HTTP API, rendering with a real Chromium.

Splash itself cannot run here as a default (it needs Qt5 WebKit and source patches;
see ../shared/recipes/scrapy-stack.md), so the tests of the Splash backend talk to
this: the same endpoint, argument checks, error answers and error body shape as
Splash's (splash/resources.py, render_options.py, errors.py), with Chromium doing the
rendering. Start it with :class:`tests.splash_standin.client.SplashStandIn` or
``python -m tests.splash_standin``. Modules: ``arguments`` (argument checks and error
types), ``server`` (HTTP and rendering), ``client`` (subprocess control).
"""
