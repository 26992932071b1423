"""The catalog client (ckancrawl.catalog.client) facing what stands between it and CKAN:
gateways answering 502/503 with Retry-After, redirects, timeouts, a closed port.

The real CKAN cannot produce these, so a scripted HTTP server on 127.0.0.1 plays the
gateway: it answers each POST with the next scripted answer, then with CKAN's success
envelope.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ckancrawl.catalog.client import CatalogClient, CatalogError

KEY = "ckan-api-key-SECRET-0123456789"
OK = (200, {"Content-Type": "application/json"}, json.dumps({"success": True, "result": {"id": "x"}}), 0.0)
BAD_GATEWAY = (502, {"Content-Type": "text/html"}, "<html><body>502 Bad Gateway</body></html>", 0.0)


class Gateway:
    def __init__(self, script):
        self.script = list(script)
        self.requests: list[tuple[str, float]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.requests.append((self.path, time.monotonic()))
                status, headers, body, delay = gateway.script.pop(0) if gateway.script else OK
                if "{auth}" in body:
                    body = body.replace("{auth}", self.headers.get("Authorization", ""))
                time.sleep(delay)
                payload = body.encode()
                try:
                    self.send_response(status)
                    for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    started = []

    def start(*script):
        started.append(Gateway(script))
        return started[-1]

    yield start
    for server in started:
        server.close()


def client_of(url, **options) -> CatalogClient:
    return CatalogClient(url, KEY, **{"retry_backoff": 0.01, "retry_backoff_max": 2.0, **options})


def test_a_gateway_error_is_retried_with_backoff(gateway):
    server = gateway(BAD_GATEWAY, BAD_GATEWAY)
    client = client_of(server.url)
    assert client.call("package_show", {"id": "x"}) == {"id": "x"}
    assert len(server.requests) == 3 and client.counts["retries"] == 2


def test_retry_after_is_honoured(gateway):
    busy = (503, {"Retry-After": "1", "Content-Type": "text/plain"}, "busy", 0.0)
    server = gateway(busy)
    client_of(server.url).call("package_show", {"id": "x"})
    (_, first), (_, second) = server.requests
    assert second - first >= 0.95


def test_a_catalog_that_stays_down_is_not_tried_again_for_a_while(gateway):
    server = gateway(*[BAD_GATEWAY] * 3)
    client = client_of(server.url, retry_times=2, down_pause=60)
    with pytest.raises(CatalogError) as first:
        client.call("package_show", {"id": "x"})
    assert (first.value.kind, first.value.detail) == ("unavailable", f"HTTP 502 from {server.url}")
    started = time.monotonic()
    with pytest.raises(CatalogError) as second:
        client.call("package_show", {"id": "y"})
    assert time.monotonic() - started < 0.1
    assert second.value.detail.startswith("not tried: the catalog did not answer (HTTP 502")
    assert len(server.requests) == 3 and client.is_down()


def test_the_catalog_is_tried_again_after_the_pause(gateway):
    server = gateway(BAD_GATEWAY)
    client = client_of(server.url, retry_times=0, down_pause=0.3)
    with pytest.raises(CatalogError):
        client.call("package_show", {"id": "x"})
    time.sleep(0.35)
    assert client.call("package_show", {"id": "x"}) == {"id": "x"}
    assert not client.is_down()


def test_a_closed_port_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_of(f"http://127.0.0.1:{port}", retry_times=1)
    with pytest.raises(CatalogError) as error:
        client.call("package_show", {"id": "x"})
    assert (error.value.kind, error.value.detail) == ("unavailable", "connection failed: connection refused")


def test_a_redirect_is_a_bad_answer_and_not_followed(gateway):
    server = gateway((301, {"Location": "https://catalog.example.org/api/action/package_patch"}, "", 0.0))
    with pytest.raises(CatalogError) as error:
        client_of(server.url).call("package_patch", {"id": "x"}, write=True)
    assert error.value.kind == "bad answer"
    assert "give its final URL" in error.value.detail
    assert len(server.requests) == 1


def test_a_timed_out_create_is_not_sent_twice(gateway):
    server = gateway((200, {"Content-Type": "application/json"}, '{"success": true, "result": {}}', 1.5))
    client = client_of(server.url, timeout=0.5)
    with pytest.raises(CatalogError) as error:
        client.call("package_create", {"name": "x"}, write=True, idempotent=False)
    assert error.value.detail == "no answer within 0.5 s (timeout)"
    assert len(server.requests) == 1


def test_the_key_never_appears_in_an_error(gateway):
    # A misconfigured proxy that echoes the request's headers in its error page.
    server = gateway((400, {"Content-Type": "text/html"}, "<pre>Authorization: {auth}</pre>", 0.0))
    with pytest.raises(CatalogError) as error:
        client_of(server.url).call("package_show", {"id": "x"})
    assert KEY not in str(error.value) and KEY not in repr(client_of(server.url))
