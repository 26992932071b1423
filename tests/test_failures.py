"""Every failure becomes a reason a person understands."""
import pytest
from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response, TextResponse
from twisted.internet.error import ConnectionRefusedError

from ckancrawl.failures import FetchError, decode_json, describe_exception
from ckancrawl.middlewares.retry import retry_after_seconds
from ckancrawl.spiders.ckan_api import action_url, as_count, read_envelope

URL = "http://portal.test/api/3/action/status_show"


def answer(body: bytes, status=200, cls=TextResponse, headers=None):
    return cls(URL, status=status, body=body, headers=headers or {"Content-Type": "application/json"},
               request=Request(URL))


def test_envelope_result():
    assert read_envelope(answer(b'{"success": true, "result": {"a": 1}}'), "status_show") == {"a": 1}


def test_ckan_error_message_is_kept():
    body = b'{"success": false, "error": {"__type": "Authorization Error", "message": "Access denied"}}'
    with pytest.raises(FetchError) as raised:
        read_envelope(answer(body, status=403), "package_list")
    assert raised.value.kind == "ckan error"
    assert str(raised.value) == "ckan error: package_list: Authorization Error: Access denied (HTTP 403)"


def test_validation_error_fields_are_listed():
    body = b'{"success": false, "error": {"__type": "Validation Error", "limit": ["Invalid integer"]}}'
    with pytest.raises(FetchError, match="limit: \\['Invalid integer'\\]"):
        read_envelope(answer(body, status=409), "organization_list")


@pytest.mark.parametrize(
    "body, status, kind",
    [
        (b"<!doctype html><html><title>Portal</title></html>", 200, "not json"),
        (b"", 200, "empty answer"),
        (b"   ", 200, "empty answer"),
        (b'{"success": true, "result": [1, 2', 200, "truncated json"),
        (b'{"success": true, "result": [1,, 2]}', 200, "malformed json"),
        (b'{"success": true, "result": "\xff\xfe"}', 200, "malformed json"),
        (b"[1, 2, 3]", 200, "wrong shape"),
        (b'{"success": true}', 200, "wrong shape"),
        (b'{"count": 3}', 200, "wrong shape"),
        (b"<html>Not Found</html>", 404, "http error"),
        (b"Internal error", 500, "http error"),
        (b'{"success": false}', 429, "rate limited"),
    ],
)
def test_bad_answers(body, status, kind):
    with pytest.raises(FetchError) as raised:
        read_envelope(answer(body, status=status), "status_show")
    assert raised.value.kind == kind
    assert URL in str(raised.value) or kind in ("ckan error",)


def test_http_status_is_kept():
    with pytest.raises(FetchError) as raised:
        read_envelope(answer(b"<html/>", status=503), "status_show")
    assert raised.value.status == 503


def test_binary_response_is_decoded_as_utf8():
    assert decode_json(answer('{"t": "Zürich"}'.encode(), cls=Response)) == {"t": "Zürich"}


@pytest.mark.parametrize(
    "exc, kind",
    [
        (DownloadTimeoutError("took too long"), "timeout"),
        (CannotResolveHostError("missing.test"), "dns"),
        (ConnectionRefusedError(), "connection refused"),
        (IgnoreRequest("max redirections reached"), "redirect loop"),
        (RuntimeError("boom"), "error"),
    ],
)
def test_exceptions(exc, kind):
    assert describe_exception(exc, timeout=15).kind == kind


def test_timeout_says_how_long():
    assert str(describe_exception(DownloadTimeoutError(), timeout=15)) == "timeout: no complete answer after 15 s"


@pytest.mark.parametrize("value, expected", [(3, 3), ("12", 12), (" 7 ", 7), (0, 0)])
def test_counts(value, expected):
    assert as_count(value, "count") == expected


@pytest.mark.parametrize("value", [None, -1, "many", 1.5, True, [3]])
def test_bad_counts(value):
    with pytest.raises(FetchError) as raised:
        as_count(value, "count")
    assert raised.value.kind == "wrong shape"


def test_action_url_encodes_lists_as_json():
    url = action_url("https://h.example.org/api/3/action/", "package_search", {"rows": 0, "facet.field": ["tags"]})
    assert url == "https://h.example.org/api/3/action/package_search?rows=0&facet.field=%5B%22tags%22%5D"


def test_retry_after_forms():
    from datetime import datetime, timezone

    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(b"120") == 120
    assert retry_after_seconds("Mon, 23 Nov 2026 12:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Mon, 23 Nov 2026 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds(b"soon") is None
    assert retry_after_seconds(None) is None
