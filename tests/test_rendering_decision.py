"""needs_rendering: which fetched pages need a browser, and why."""
from __future__ import annotations

from scrapy.http import HtmlResponse, Request, Response, TextResponse

from ckancrawl.rendering import needs_rendering


def page(body: str, status: int = 200, content_type: str = "text/html; charset=utf-8", flags=None) -> Response:
    return HtmlResponse("http://portal.test/", status=status, body=body.encode("utf-8"), flags=flags,
                        headers={"Content-Type": content_type}, request=Request("http://portal.test/"))


CKAN_HOME = """<html><head><title>Data Portal</title><script src="/webassets/base.js"></script></head>
<body><header><a href="/dataset">Datasets</a> <a href="/organization">Organizations</a></header>
<h1>Welcome to the City Data Portal</h1><p>Find, share and use the open data published by the city,
its agencies and partners. 1,204 datasets from 38 organizations.</p></body></html>"""

REACT_SHELL = """<!doctype html><html><head><title>React App</title></head><body>
<noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div>
<script src="/static/js/main.3f2a.js"></script></body></html>"""

ANGULAR_SHELL = """<!doctype html><html><head><title>Portal</title><base href="/"></head>
<body><app-root>Loading...</app-root><script src="runtime.js" type="module"></script></body></html>"""


def test_a_ckan_home_page_is_left_as_it_is():
    assert needs_rendering(page(CKAN_HOME)) is None


def test_an_empty_body_needs_rendering():
    assert needs_rendering(page("  \n ")) == "empty body"


def test_a_noscript_shell_needs_rendering():
    assert needs_rendering(page(REACT_SHELL)) == "noscript shell"


def test_a_script_shell_without_noscript_needs_rendering():
    assert needs_rendering(page(ANGULAR_SHELL)) == "script shell"


def test_script_and_style_text_does_not_count_as_content():
    body = "<html><body><style>" + "p{color:red}" * 50 + "</style><div id=app></div><script>" + "x=1;" * 200 + "</script></body></html>"
    assert needs_rendering(page(body)) == "script shell"


def test_a_short_page_without_scripts_stays_as_it_is():
    assert needs_rendering(page("<html><body><p>Maintenance</p></body></html>")) is None


def test_error_pages_are_not_rendered():
    assert needs_rendering(page(REACT_SHELL, status=404)) is None
    assert needs_rendering(page("", status=503)) is None


def test_json_is_not_rendered():
    response = TextResponse("http://portal.test/api/3/action/status_show", body=b'{"success": true}',
                            headers={"Content-Type": "application/json"})
    assert needs_rendering(response) is None


def test_an_empty_answer_with_a_json_type_is_not_a_page():
    assert needs_rendering(Response("http://portal.test/x", body=b"", headers={"Content-Type": "application/json"})) is None


def test_html_without_a_content_type_is_still_html():
    response = TextResponse("http://portal.test/", body=REACT_SHELL.encode(), encoding="utf-8")
    assert needs_rendering(response) == "noscript shell"


def test_a_rendered_page_is_not_rendered_again():
    assert needs_rendering(page(REACT_SHELL, flags=["rendered"])) is None
