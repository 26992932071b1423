"""The splash backend (scrapy-splash 0.11.1 on Scrapy 2.19) against the Splash stand-in.

One crawl of the render probe spider with ``RENDERING_BACKEND=splash``: pages fetched
then rendered when they need it, requests marked ``meta["render"]``, and Splash's
error answers (502 for an unknown host, 504 past the render timeout) as the spider
sees them. Splash's other error answers are translated without a crawl, from
responses shaped as scrapy-splash hands them over.
"""
from __future__ import annotations

import json

import pytest
from scrapy.exceptions import CannotResolveHostError, DownloadConnectionRefusedError, DownloadTimeoutError
from scrapy.http import Headers, Request
from scrapy.settings import Settings

from ckancrawl.failures import describe_exception
from ckancrawl.rendering import RenderingAddon
from ckancrawl.rendering.errors import RenderingConfigError, RenderingError
from tests.rendering_probe import run_probe


@pytest.fixture(scope="module")
def splash_crawl(pages, splash, tmp_path_factory):
    return run_probe(
        tmp_path_factory.mktemp("splash"), "splash",
        urls=[pages.url("/shell"), pages.url("/plain")],
        render=[pages.url("/late"), "http://no-such-host.invalid/", pages.url("/slow?s=6")],
        # Renders share two cores with everything else: a generous timeout, and a page
        # slower than it. A 504 would be retried; once is enough to see it.
        settings={"SPLASH_URL": splash.url, "RENDERING_WAIT": "0.4", "RENDERING_TIMEOUT": "4", "RETRY_TIMES": "0"},
    )


def test_splash_renders_a_title_set_by_script(pages, splash_crawl):
    assert splash_crawl.returncode == 0, splash_crawl.log[-3000:]
    item = splash_crawl.item(pages.url("/shell"), "fetch")
    assert (item["title_before"], item["title"], item["h1"]) == ("Loading", "Rendered by script", "Datasets of the portal")
    assert item["reason"] == "noscript shell" and item["rendered"] is True


def test_a_page_that_has_its_text_is_not_sent_to_splash(pages, splash, splash_crawl):
    assert splash_crawl.item(pages.url("/plain"), "fetch")["rendered"] is False
    assert pages.url("/plain") not in [request.get("url") for request in splash.requests()]


def test_a_request_marked_render_is_rendered_after_the_wait(pages, splash_crawl):
    item = splash_crawl.item(pages.url("/late"), "meta")
    assert item["title"] == "Rendered by script" and item["rendered"] is True


def test_splash_is_asked_for_render_html_with_wait_timeout_and_our_headers(pages, splash, splash_crawl):
    sent = next(request for request in splash.requests() if request.get("url") == pages.url("/late"))
    assert (sent["wait"], sent["timeout"]) == (0.4, 4.0)
    assert sent["headers"]["User-Agent"].startswith("ckancrawl/")
    # One per page sent (a retry is not sent through scrapy-splash again).
    assert int(splash_crawl.stats_value("splash/render.html/request_count")) == 4


def test_an_unknown_host_reads_like_a_dns_failure(splash_crawl):
    item = splash_crawl.item("http://no-such-host.invalid/", "meta")
    assert item["error"] == ("dns: host name could not be resolved (Splash: Host no-such-host.invalid not found "
                             "(network error 3) at http://no-such-host.invalid/)")


def test_a_render_past_its_timeout_is_a_timeout(pages, splash_crawl):
    item = splash_crawl.item(pages.url("/slow?s=6"), "meta")
    assert item["error"].startswith("timeout: ")
    assert int(splash_crawl.stats_value("rendering/splash/failed/DownloadTimeoutError")) == 1
    assert int(splash_crawl.stats_value("splash/render.html/response_count/504")) == 1


def test_scrapy_splash_runs_on_scrapy_2_19_without_warnings(splash_crawl):
    assert "Deprecat" not in splash_crawl.log and "Traceback" not in splash_crawl.log
    assert "'SPLASH_SLOT_POLICY': 'scrapy_default'" in splash_crawl.log or "SplashMiddleware" in splash_crawl.log


# -- Splash's error answers, as exceptions -------------------------------------------------


def splash_answer(status: int, body: dict) -> tuple:
    from ckancrawl.rendering.splash import SplashBackend, SplashMiddleware, _scrapy_splash

    backend = SplashBackend(Settings({"DOWNLOAD_TIMEOUT": 15}))
    request = Request("http://127.0.0.1:8050/render.html", method="POST",
                      meta={"splash": {"endpoint": "render.html", "args": {"url": "http://portal.test/"}},
                            "_splash_processed": True})
    response = _scrapy_splash.SplashJsonResponse(
        "http://127.0.0.1:8050/render.html", status=status, body=json.dumps(body).encode(),
        headers=Headers({"Content-Type": "application/json"}), request=request,
    )
    assert SplashMiddleware  # the shim imported scrapy-splash
    return backend, request, response


@pytest.mark.parametrize("code, exception, kind", [
    (1, DownloadConnectionRefusedError, "connection refused"),
    (3, CannotResolveHostError, "dns"),
    (4, DownloadTimeoutError, "timeout"),
    (6, RenderingError, "tls"),
])
def test_splash_network_errors_become_download_failures(code, exception, kind):
    backend, request, response = splash_answer(502, {
        "error": 502, "type": "RenderError", "description": "Error rendering page",
        "info": {"type": "Network", "code": code, "text": "Qt says no", "url": "http://portal.test/"}})
    error = backend.error_of(request, response)
    assert isinstance(error, exception)
    assert describe_exception(error).kind == kind


def test_a_bad_option_is_a_rendering_error_with_splash_s_words():
    backend, request, response = splash_answer(400, {
        "error": 400, "type": "BadOption", "description": "Incorrect HTTP API arguments",
        "info": {"type": "bad_argument", "argument": "timeout", "description": "Argument is out of the allowed range",
                 "min": 0, "max": 90.0, "value": 120.0}})
    error = backend.error_of(request, response)
    assert isinstance(error, RenderingError)
    assert str(error).startswith("Splash answered HTTP 400 BadOption (Incorrect HTTP API arguments) for "
                                 "http://portal.test/: {")
    assert '"argument": "timeout"' in str(error)


def test_a_rendered_page_is_no_error():
    backend, request, response = splash_answer(200, {})
    assert backend.error_of(request, response) is None


def test_the_splash_backend_needs_a_splash_url():
    with pytest.raises(RenderingConfigError, match="needs SPLASH_URL"):
        RenderingAddon().update_settings(Settings({"RENDERING_BACKEND": "splash"}))


def test_the_per_domain_slot_policy_is_refused():
    settings = Settings({"RENDERING_BACKEND": "splash", "SPLASH_URL": "http://127.0.0.1:8050",
                         "SPLASH_SLOT_POLICY": "per_domain"})
    with pytest.raises(RenderingConfigError, match="does not work with Scrapy 2.19"):
        RenderingAddon().update_settings(settings)


def test_the_splash_backend_installs_its_middleware_and_slot():
    from ckancrawl.rendering.middleware import RenderingMiddleware
    from ckancrawl.rendering.splash import SplashMiddleware

    settings = Settings({"RENDERING_BACKEND": "splash", "SPLASH_URL": "http://splash.internal:8050",
                         "RENDERING_CONCURRENCY": 3})
    RenderingAddon().update_settings(settings)
    assert settings.getdict("DOWNLOADER_MIDDLEWARES") == {SplashMiddleware: 725, RenderingMiddleware: 540}
    assert settings.getdict("DOWNLOAD_SLOTS")["splash.internal"] == {"concurrency": 3}
    assert settings["SPLASH_SLOT_POLICY"] == "scrapy_default"
