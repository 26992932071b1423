"""The playwright backend with Debian's real Chromium, in a real crawl.

One crawl of the render probe spider (tests/spiders_for_tests/render_probe.py) over
local pages (tests/rendering_pages.py): pages fetched then rendered when they need it
(``render_if_needed``), and requests marked ``meta["render"]``.
"""
from __future__ import annotations

import os
import subprocess

import pytest
from scrapy.settings import Settings

from ckancrawl.rendering import RenderingAddon
from ckancrawl.rendering.errors import RenderingConfigError
from tests.rendering_probe import run_probe

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium_crawl(pages, tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run the tests with ./scripts/test, which installs Debian's chromium")
    return run_probe(
        tmp_path_factory.mktemp("chromium"), "playwright",
        urls=[pages.url("/shell"), pages.url("/late"), pages.url("/plain")],
        render=[pages.url("/shell"), pages.url("/ua"), "http://no-such-host.invalid/"],
        settings={"RENDERING_TIMEOUT": "10"},  # renders share two cores with everything else
    )


def test_chromium_renders_a_title_set_by_script(pages, chromium_crawl):
    assert chromium_crawl.returncode == 0, chromium_crawl.log[-3000:]
    item = chromium_crawl.item(pages.url("/shell"), "fetch")
    assert (item["title_before"], item["h1_before"]) == ("Loading", "")
    assert (item["title"], item["h1"]) == ("Rendered by script", "Datasets of the portal")
    assert item["reason"] == "noscript shell" and item["rendered"] is True


def test_rendering_waits_for_scripts_that_run_after_the_load_event(pages, chromium_crawl):
    item = chromium_crawl.item(pages.url("/late"), "fetch")
    assert item["title"] == "Rendered by script" and item["rendered"] is True


def test_a_page_that_has_its_text_is_not_rendered(pages, chromium_crawl):
    item = chromium_crawl.item(pages.url("/plain"), "fetch")
    assert item["reason"] is None and item["rendered"] is False
    assert item["title"] == "Open Data Portal"


def test_a_request_marked_render_is_rendered_by_the_browser(pages, chromium_crawl):
    item = chromium_crawl.item(pages.url("/shell"), "meta")
    assert item["title"] == "Rendered by script" and item["rendered"] is True


def test_a_browser_dns_failure_reads_like_a_download_failure(chromium_crawl):
    item = chromium_crawl.item("http://no-such-host.invalid/", "meta")
    assert item["error"].startswith("dns: host name could not be resolved (ERR_NAME_NOT_RESOLVED")
    assert "Traceback" not in chromium_crawl.log


def test_debian_chromium_is_the_browser(pages, chromium_crawl):
    # "Chromium 156.0.8078.79 built on Debian GNU/Linux 12"; the user agent gives the major only.
    major = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.split()[1].split(".")[0]
    assert f"HeadlessChrome/{major}." in chromium_crawl.item(pages.url("/ua"), "meta")["h1"]
    assert int(chromium_crawl.stats_value("rendering/playwright/rendered")) == 4
    assert int(chromium_crawl.stats_value("playwright/browser_count")) == 1


def test_without_a_backend_nothing_is_rendered_and_the_need_is_counted(pages, tmp_path):
    result = run_probe(tmp_path, None, urls=[pages.url("/shell")], render=[pages.url("/shell")])
    fetched, marked = result.item(pages.url("/shell"), "fetch"), result.item(pages.url("/shell"), "meta")
    assert (fetched["reason"], fetched["rendered"], fetched["title"]) == ("noscript shell", False, "Loading")
    assert (marked["rendered"], marked["title"]) == (False, "Loading")
    assert int(result.stats_value("rendering/no_backend")) == 1
    assert "scrapy-playwright" not in result.log


def test_the_playwright_backend_refuses_a_missing_browser():
    settings = Settings({"RENDERING_BACKEND": "playwright", "RENDERING_CHROMIUM": "/opt/no/chromium"})
    with pytest.raises(RenderingConfigError, match="apt-get install -y chromium"):
        RenderingAddon().update_settings(settings)


def test_the_playwright_backend_refuses_another_download_handler():
    settings = Settings({"RENDERING_BACKEND": "playwright",
                         "DOWNLOAD_HANDLERS": {"https": "ckancrawl.resources.download_handler.ResourceDownloadHandler"}})
    with pytest.raises(RenderingConfigError, match="DOWNLOAD_HANDLERS gives"):
        RenderingAddon().update_settings(settings)


def test_an_unknown_backend_is_refused():
    with pytest.raises(RenderingConfigError, match="use playwright or splash"):
        RenderingAddon().update_settings(Settings({"RENDERING_BACKEND": "selenium"}))


def test_a_wait_longer_than_the_render_timeout_is_refused():
    settings = Settings({"RENDERING_BACKEND": "playwright", "RENDERING_WAIT": 5, "RENDERING_TIMEOUT": 2})
    with pytest.raises(RenderingConfigError, match="must be shorter than RENDERING_TIMEOUT"):
        RenderingAddon().update_settings(settings)
