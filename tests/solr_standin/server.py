"""The HTTP face of the stand-in: the Solr paths CKAN's pysolr calls, plus a test door.

Under `/solr/<core>/`: `select` and `query` (GET, or POST with a form body), `update`
(POST JSON or XML), `schema?wt=schema.xml` and `admin/file?file=schema.xml` (the schema
file as given), `admin/ping`. HTTP/1.1 with keep-alive, one thread per connection.
Errors are Solr's JSON `{"responseHeader": …, "error": {"msg", "code"}}`.

Under `/standin/` (not Solr; for tests): `GET stats` (request counts per handler and
index sizes), `POST faults` with `{"handler": "select", "status": 503, "count": 1,
"delay": 0}` to make the next requests to a handler fail or stall, `DELETE faults`.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import SolrError
from .index import Index
from .schema import Schema
from .search import Params
from .update import handle_update

HANDLERS = ("select", "query", "update", "update/json", "update/xml", "schema", "admin/file", "admin/ping")


class StandinState:
    """What the request handlers share: the index, the schema file and the test controls."""

    def __init__(self, schema_path: str, core: str, data_path: str | None):
        with open(schema_path, "rb") as handle:
            self.schema_bytes = handle.read()
        self.schema = Schema.from_xml(self.schema_bytes)
        self.core = core
        self.index = Index(self.schema, data_path)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.faults: list[dict[str, Any]] = []

    def count(self, handler: str) -> None:
        with self.lock:
            self.counts[handler] = self.counts.get(handler, 0) + 1

    def take_fault(self, handler: str) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.faults:
                if fault["handler"] in (handler, "*") and fault["count"] > 0:
                    fault["count"] -= 1
                    return fault
        return None


def _error_body(code: int, msg: str, error_class: str) -> dict[str, Any]:
    return {"responseHeader": {"status": code, "QTime": 0},
            "error": {"metadata": ["error-class", "org.apache.solr.common.SolrException",
                                   "root-error-class", error_class],
                      "msg": msg, "code": code}}


class SolrRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SolrStandin/1.0"
    state: StandinState  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), "application/json;charset=utf-8")

    def _send_error(self, error: SolrError) -> None:
        self._send_json(error.code, _error_body(error.code, error.msg, error.error_class))

    def do_GET(self) -> None:
        self._dispatch("GET", b"")

    def do_POST(self) -> None:
        self._dispatch("POST", self._body())

    def do_DELETE(self) -> None:
        self._dispatch("DELETE", self._body())

    # --- routing --------------------------------------------------------------------------

    def _dispatch(self, method: str, body: bytes) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        path = parsed.path.strip("/")
        try:
            if path.startswith("standin/"):
                self._control(method, path[len("standin/"):], body)
                return
            prefix = f"solr/{self.state.core}"
            if not (path == prefix or path.startswith(prefix + "/")):
                raise SolrError(404, f"Not Found: no core at /{path}")
            handler = path[len(prefix):].strip("/")
            if handler not in HANDLERS:
                raise SolrError(404, f"Not Found: no handler for /{path}")
            self.state.count(handler)
            fault = self.state.take_fault(handler)
            if fault is not None:
                time.sleep(fault.get("delay", 0))
                if fault.get("status"):
                    raise SolrError(int(fault["status"]), f"injected failure for {handler}")
            content_type = self.headers.get("Content-Type", "")
            if method == "POST" and handler in ("select", "query") and "x-www-form-urlencoded" in content_type:
                pairs += urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            self._handle(handler, method, Params(pairs), body, content_type)
        except SolrError as error:
            self._send_error(error)
        except Exception as error:  # a bug in the stand-in: answer as Solr would, and show it
            traceback.print_exc(file=sys.stderr)
            self._send_error(SolrError(500, f"{type(error).__name__}: {error}", "java.lang.RuntimeException"))

    def _handle(self, handler: str, method: str, params: Params, body: bytes, content_type: str) -> None:
        state = self.state
        if handler in ("select", "query"):
            self._send_json(200, state.index.search(params))
        elif handler.startswith("update"):
            if method != "POST" and not params.pairs:
                raise SolrError(400, "missing content stream")
            self._send_json(200, handle_update(state.index, params, body if method == "POST" else b"", content_type))
        elif handler == "schema":
            if params.get("wt") == "schema.xml":
                self._send(200, state.schema_bytes, "application/xml;charset=utf-8")
            else:
                self._send_json(200, {"responseHeader": {"status": 0, "QTime": 0},
                                      "schema": {"name": state.schema.name, "version": float(state.schema.version or 0),
                                                 "uniqueKey": state.schema.unique_key}})
        elif handler == "admin/file":
            if params.get("file") != "schema.xml":
                raise SolrError(404, f"Can not find: {params.get('file')}")
            self._send(200, state.schema_bytes, "application/xml;charset=utf-8")
        else:
            self._send_json(200, {"responseHeader": {"status": 0, "QTime": 0}, "status": "OK"})

    def _control(self, method: str, name: str, body: bytes) -> None:
        state = self.state
        if name == "stats" and method == "GET":
            with state.lock:
                counts = dict(state.counts)
            self._send_json(200, {"requests": counts, "index": state.index.stats()})
        elif name == "faults" and method == "POST":
            fault = json.loads(body or b"{}")
            fault.setdefault("handler", "*")
            fault.setdefault("count", 1)
            with state.lock:
                state.faults.append(fault)
            self._send_json(200, {"faults": state.faults})
        elif name == "faults" and method == "DELETE":
            with state.lock:
                state.faults.clear()
            self._send_json(200, {"faults": []})
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no stand-in control {method} {name}"})


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    verbose = False


def make_server(schema_path: str, host: str = "127.0.0.1", port: int = 0, core: str = "ckan",
                data_path: str | None = None, verbose: bool = False) -> StandinHTTPServer:
    """A server bound to host:port (0 picks a free port), not yet serving."""
    state = StandinState(schema_path, core, data_path)
    handler = type("BoundSolrRequestHandler", (SolrRequestHandler,), {"state": state})
    server = StandinHTTPServer((host, port), handler)
    server.verbose = verbose
    return server


class SolrStandin:
    """The stand-in served from a thread of this process: for tests of the stand-in itself."""

    def __init__(self, schema_path: str, port: int = 0, core: str = "ckan", data_path: str | None = None):
        self.server = make_server(schema_path, port=port, core=core, data_path=data_path)
        self._thread = threading.Thread(target=self.server.serve_forever, name="solr-standin", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/solr/{self.server.RequestHandlerClass.state.core}"

    @property
    def index(self) -> Index:
        return self.server.RequestHandlerClass.state.index

    def __enter__(self) -> SolrStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
