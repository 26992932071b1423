"""The Splash stand-in answers render.html as Splash 3.5 does, errors included.

Expected bodies follow Splash's source: splash/resources.py (error envelope, 415, 498,
502, 504), splash/render_options.py (argument checks and their ``info``),
splash/errors.py (type names and descriptions).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.splash_standin.client import SplashStandIn

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(splash: SplashStandIn, query: dict[str, Any] | None = None, payload: Any = None,
         data: bytes | None = None, content_type: str | None = None) -> tuple[int, dict[str, str], str]:
    url = f"{splash.url}/render.html"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {}
    if payload is not None:
        data, content_type = json.dumps(payload).encode(), "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with _OPENER.open(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def bad_option(info: dict[str, Any]) -> dict[str, Any]:
    return {"error": 400, "type": "BadOption", "description": "Incorrect HTTP API arguments", "info": info}


def test_render_html_answers_the_page_after_its_scripts(splash, pages):
    status, headers, body = call(splash, {"url": pages.url("/shell")})
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Rendered by script</title>" in body and "<h1>Datasets of the portal</h1>" in body


def test_arguments_may_come_as_json(splash, pages):
    status, _, body = call(splash, payload={"url": pages.url("/late"), "wait": 0.5})
    assert status == 200 and "<title>Rendered by script</title>" in body


def test_without_wait_a_late_script_has_not_run_yet(splash, pages):
    _, _, body = call(splash, {"url": pages.url("/later")})
    assert "<title>Loading</title>" in body


def test_js_source_runs_in_the_page(splash, pages):
    status, _, body = call(splash, {"url": pages.url("/plain")}, data=b"document.title = 'from js_source'",
                           content_type="application/javascript")
    assert status == 200 and "<title>from js_source</title>" in body


def test_an_error_page_is_rendered_like_any_other(splash, pages):
    status, _, body = call(splash, {"url": pages.url("/gone")})
    assert status == 200 and "Not found" in body


def test_a_missing_url_is_a_bad_option(splash):
    status, headers, body = call(splash, {"wait": "0.5"})
    assert status == 400 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert body.endswith("\n")
    assert json.loads(body) == bad_option(
        {"type": "argument_required", "argument": "url", "description": "Required argument is missing: url"})


def test_a_wait_longer_than_the_timeout_is_out_of_range(splash, pages):
    status, _, body = call(splash, {"url": pages.url("/plain"), "wait": "5", "timeout": "2"})
    assert status == 400
    assert json.loads(body)["info"] == {"type": "bad_argument", "argument": "wait",
                                        "description": "Argument is out of the allowed range",
                                        "min": 0, "max": 2.0, "value": 5.0}


def test_a_timeout_above_max_timeout_is_out_of_range(splash, pages):
    _, _, body = call(splash, {"url": pages.url("/plain"), "timeout": "999"})
    assert json.loads(body)["info"]["max"] == 60.0


def test_an_argument_of_the_wrong_type_is_named(splash, pages):
    _, _, body = call(splash, {"url": pages.url("/plain"), "wait": "soon"})
    assert json.loads(body)["info"] == {"type": "bad_argument", "argument": "wait",
                                        "description": "Argument 'wait' has a wrong type", "required_type": "float"}


def test_broken_json_is_a_bad_option(splash):
    status, _, body = call(splash, data=b'{"url": ', content_type="application/json")
    assert status == 400
    info = json.loads(body)["info"]
    assert (info["type"], info["description"]) == ("invalid_json", "Can't decode JSON")


def test_a_post_of_another_content_type_is_refused(splash):
    status, _, body = call(splash, data=b"url=x", content_type="application/x-www-form-urlencoded")
    assert status == 415
    assert json.loads(body) == {
        "error": 415, "type": "UnsupportedContentType", "description": "Request Content-Type is not supported",
        "info": {"supported": ["application/javascript", "application/json"],
                 "received": "application/x-www-form-urlencoded"},
    }


def test_an_unknown_host_is_a_render_error(splash):
    status, _, body = call(splash, {"url": "http://no-such-host.invalid/"})
    assert status == 502
    assert json.loads(body) == {
        "error": 502, "type": "RenderError", "description": "Error rendering page",
        "info": {"type": "Network", "code": 3, "text": "Host no-such-host.invalid not found",
                 "url": "http://no-such-host.invalid/"},
    }


def test_a_refused_connection_is_a_render_error(splash):
    status, _, body = call(splash, {"url": "http://127.0.0.1:9/"})
    assert status == 502 and json.loads(body)["info"]["code"] == 1


def test_a_render_past_its_timeout_is_a_global_timeout(splash, pages):
    status, _, body = call(splash, {"url": pages.url("/slow?s=3"), "timeout": "1"})
    error = json.loads(body)
    assert status == 504
    assert (error["type"], error["description"]) == ("GlobalTimeoutError", "Timeout exceeded rendering page")
    assert error["info"]["timeout"] == 1.0 and error["info"]["remaining"] <= 0


def test_saved_arguments_are_named_in_a_header_and_can_be_loaded(splash, pages):
    status, headers, _ = call(splash, payload={"url": pages.url("/plain"), "js_source": "document.title = 'saved'",
                                               "save_args": ["js_source"]})
    assert status == 200
    name, key = headers["X-Splash-Saved-Arguments"].split("=")
    assert name == "js_source"
    _, _, body = call(splash, payload={"url": pages.url("/plain"), "load_args": {"js_source": key}})
    assert "<title>saved</title>" in body


def test_unknown_loaded_arguments_have_expired(splash, pages):
    status, _, body = call(splash, payload={"url": pages.url("/plain"), "load_args": {"js_source": "0" * 40}})
    assert status == 498
    assert json.loads(body) == {"error": 498, "type": "ExpiredArguments",
                                "description": "Arguments stored with ``save_args`` are expired",
                                "info": {"expired": ["js_source"]}}
