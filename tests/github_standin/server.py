"""The stand-in's HTTP server: authentication, latency, limits, faults, both APIs.

One thread per connection (keep-alive, HTTP/1.1); ``latency`` seconds are slept inside
each API request, while it counts as in flight. Control endpoints under ``/_standin/``
are free, never delayed and never logged as API traffic:

- ``GET /_standin/log``: every API request: method, path, status, identity label
  (``user:1``, ``ip:127.0.0.1``, never the token), resource, points charged, whether it
  was conditional, the fault that answered it. ``POST /_standin/log/clear``.
- ``GET /_standin/budgets``; ``POST /_standin/budget`` ``{"token", "resource",
  "remaining", "reset_in"}``; ``POST /_standin/budgets/clear``.
- ``POST /_standin/faults``: rules (one or a list) ``{"match": regex, "kind": ...,
  "times": 1, "skip": 0, ...}`` tried in order against ``"GET /path?query"`` or
  ``"POST /graphql <query>"``. Kinds: ``secondary`` (403 or ``status: 429``, optional
  ``retry_after``), ``primary`` (spends the budget, ``reset_in`` seconds), ``accepted``
  (202), ``server_error`` (``status``, default 502; GraphQL gets GitHub's timeout body),
  ``status`` (any ``status``/``body``/``headers``), ``delay`` (``seconds`` more latency).
  ``DELETE /_standin/faults``.
- ``POST /_standin/repos`` ``{"full_name", "changes"}`` edits a repository (a new
  ``owner``/``name`` is a rename: the old name then answers 301); ``PUT /_standin/world``.
- ``POST /_standin/config`` ``{"latency": seconds}``.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.github_standin.graphql_executor import Context, ValidationError, cost, execute, validate
from tests.github_standin.graphql_parser import GraphQLSyntaxError, parse
from tests.github_standin.limits import Budgets, SecondaryLimits
from tests.github_standin.rest import Rest
from tests.github_standin.world import World

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
SECONDARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
GRAPHQL_TIMEOUT = (
    "Something went wrong while executing your query. This may be the result of a timeout, or it could be a "
    "GitHub bug. Please include `{request_id}` when reporting this issue."
)


class StandIn:
    """All state of one stand-in; the handler calls ``handle``."""

    def __init__(self, world: World, tokens: list[str], latency: float = 0.0, budgets: Budgets | None = None,
                 secondary: SecondaryLimits | None = None, primary_status: int = 403,
                 graphql_limit_style: str = "200") -> None:
        self.world = world
        self.tokens = {token: index + 1 for index, token in enumerate(tokens)}
        self.latency = latency
        self.budgets = budgets or Budgets()
        self.secondary = secondary or SecondaryLimits()
        self.primary_status = primary_status
        self.graphql_limit_style = graphql_limit_style
        self.faults: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.counter = 0
        self.rest_by_base: dict[str, Rest] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _request_id(self) -> str:
        with self.lock:
            self.counter += 1
            return f"C0DE:{self.counter:04X}:STANDIN"

    def identify(self, authorization: str | None, client_ip: str) -> tuple[str | None, str]:
        """(identity, label); identity None for a token GitHub would refuse."""
        if not authorization:
            return f"ip:{client_ip}", f"ip:{client_ip}"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() not in self.tokens:
            return None, "bad credentials"
        user = self.tokens[token.strip()]
        return f"user:{user}", f"user:{user}"

    def _take_fault(self, text: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.faults:
                if rule.get("times", 1) == 0 or not re.search(rule.get("match", ""), text):
                    continue
                if rule.get("skip", 0) > 0:
                    rule["skip"] -= 1
                    continue
                if rule.get("times", 1) > 0:
                    rule["times"] = rule.get("times", 1) - 1
                return dict(rule)
        return None

    def _rest(self, base_url: str) -> Rest:
        rest = self.rest_by_base.get(base_url)
        if rest is None or rest.world is not self.world:
            rest = self.rest_by_base[base_url] = Rest(self.world, base_url)
        return rest

    def _record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["n"] = len(self.log) + 1
            self.log.append(entry)

    # -- one request ---------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        path, _, query = handler.path.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if path.startswith("/_standin/"):
            status, payload = self.control(method, path, body)
            return _send(handler, status, payload, {})
        base_url = f"http://{handler.headers.get('Host', '127.0.0.1')}"
        identity, label = self.identify(handler.headers.get("Authorization"), handler.client_address[0])
        is_graphql = path == "/graphql"
        resource = "graphql" if is_graphql else "core"
        entry: dict[str, Any] = {
            "t": time.time(), "method": method, "path": handler.path, "identity": label, "resource": resource,
            "conditional": bool(handler.headers.get("If-None-Match")), "points": 0, "fault": None,
        }
        request_id = self._request_id()
        headers = {"X-GitHub-Request-Id": request_id}
        if identity is None:
            time.sleep(self.latency)
            entry["status"] = 401
            self._record(entry)
            return _send(handler, 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                                        "status": "401"}, headers)
        if path == "/rate_limit":
            status, payload = 200, self._rate_limit_json(identity)
            entry.update(status=status, resource="none")
            self._record(entry)
            return _send(handler, status, payload, headers)
        if not self.secondary.enter(identity):
            self.secondary.leave(identity)
            return self._secondary(handler, entry, headers, request_id, 403, None)
        try:
            time.sleep(self.latency)
            text = f"{method} {handler.path}" + (f" {_graphql_text(body)}" if is_graphql else "")
            fault = self._take_fault(text)
            if fault is not None:
                return self._fault(handler, fault, entry, headers, identity, resource, request_id, is_graphql, body)
            if not self.secondary.charge(identity, resource, 1):
                return self._secondary(handler, entry, headers, request_id, 403, None)
            if is_graphql:
                return self._graphql(handler, body, identity, entry, headers, request_id)
            return self._rest_answer(handler, method, path, query, base_url, identity, entry, headers, request_id)
        finally:
            self.secondary.leave(identity)

    def _secondary(self, handler: Any, entry: dict[str, Any], headers: dict[str, str], request_id: str,
                   status: int, retry_after: Any) -> None:
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        entry.update(status=status, fault=entry.get("fault") or "secondary")
        self._record(entry)
        _send(handler, status, {"message": SECONDARY_MESSAGE.format(request_id=request_id),
                                "documentation_url": SECONDARY_DOCS}, headers)

    def _primary(self, handler: Any, entry: dict[str, Any], headers: dict[str, str], identity: str,
                 resource: str, request_id: str) -> None:
        headers.update(self.budgets.headers(identity, resource))
        who = f"user ID {identity.split(':', 1)[1]}" if identity.startswith("user:") else identity.split(":", 1)[1]
        if resource == "graphql":
            status = 200 if self.graphql_limit_style == "200" else 403
            kind = "RATE_LIMITED" if self.graphql_limit_style == "200" else "RATE_LIMIT"
            error: dict[str, Any] = {"type": kind, "message": f"API rate limit exceeded for {who}."}
            if kind == "RATE_LIMIT":
                error["code"] = "graphql_rate_limit"
            entry.update(status=status, fault=entry.get("fault") or "primary")
            self._record(entry)
            return _send(handler, status, {"errors": [error]}, headers)
        message = f"API rate limit exceeded for {who}."
        if identity.startswith("ip:"):
            message += (" (But here's the good news: Authenticated requests get a higher rate limit. "
                        "Check out the documentation for more details.)")
        message += f" If you reach out to GitHub Support for help, please include the request ID {request_id}."
        entry.update(status=self.primary_status, fault=entry.get("fault") or "primary")
        self._record(entry)
        return _send(handler, self.primary_status, {"message": message, "documentation_url": PRIMARY_DOCS}, headers)

    def _fault(self, handler: Any, fault: dict[str, Any], entry: dict[str, Any], headers: dict[str, str],
               identity: str, resource: str, request_id: str, is_graphql: bool, body: bytes) -> None:
        kind = fault.get("kind", "status")
        entry["fault"] = kind
        if kind == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            entry["fault"] = None
            path, _, query = handler.path.partition("?")
            if is_graphql:
                return self._graphql(handler, body, identity, entry, headers, request_id)
            return self._rest_answer(handler, handler.command, path, query, f"http://{handler.headers.get('Host')}",
                                     identity, entry, headers, request_id)
        if kind == "secondary":
            return self._secondary(handler, entry, headers, request_id, int(fault.get("status", 403)),
                                   fault.get("retry_after"))
        if kind == "primary":
            self.budgets.set_remaining(identity, resource, 0, float(fault.get("reset_in", 2)))
            return self._primary(handler, entry, headers, identity, resource, request_id)
        headers.update(self.budgets.headers(identity, resource))
        if kind == "accepted":
            entry["status"] = 202
            self._record(entry)
            return _send(handler, 202, {}, headers)
        if kind == "server_error":
            status = int(fault.get("status", 502))
            entry["status"] = status
            self._record(entry)
            if is_graphql:
                return _send(handler, status, {"data": None, "errors": [
                    {"message": GRAPHQL_TIMEOUT.format(request_id=request_id)}]}, headers)
            return _send(handler, status, {"message": "Server Error"}, headers)
        status = int(fault.get("status", 500))
        entry["status"] = status
        self._record(entry)
        headers.update(fault.get("headers") or {})
        return _send(handler, status, fault.get("body"), headers)

    def _rest_answer(self, handler: Any, method: str, path: str, query: str, base_url: str, identity: str,
                     entry: dict[str, Any], headers: dict[str, str], request_id: str) -> None:
        if self.budgets.remaining(identity, "core") <= 0:
            return self._primary(handler, entry, headers, identity, "core", request_id)
        status, payload, extra = self._rest(base_url).route(method, path, query)
        headers.update(extra)
        body = b"" if payload is None else json.dumps(payload).encode()
        authenticated = identity.startswith("user:")
        if status == 200:
            headers["ETag"] = 'W/"' + hashlib.sha256(identity.encode() + b"\0" + body).hexdigest() + '"'
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            sent = handler.headers.get("If-None-Match") or ""
            if headers["ETag"] in [tag.strip() for tag in sent.split(",")]:
                status, body = 304, b""
        if not (status == 304 and authenticated):
            self.budgets.charge(identity, "core", 1)
            entry["points"] = 1
        headers.update(self.budgets.headers(identity, "core"))
        entry["status"] = status
        self._record(entry)
        _send_bytes(handler, status, body, headers)

    def _graphql(self, handler: Any, body: bytes, identity: str, entry: dict[str, Any], headers: dict[str, str],
                 request_id: str) -> None:
        if identity.startswith("ip:"):
            entry["status"] = 401
            self._record(entry)
            return _send(handler, 401, {
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
            }, headers)
        try:
            request = json.loads(body or b"null")
        except ValueError:
            entry["status"] = 400
            self._record(entry)
            return _send(handler, 400, {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"}, headers)
        query = request.get("query") if isinstance(request, dict) else None
        variables = (request.get("variables") or {}) if isinstance(request, dict) else {}
        headers.update(self.budgets.headers(identity, "graphql"))
        if not isinstance(query, str):
            entry["status"] = 200
            self._record(entry)
            return _send(handler, 200, {"errors": [{"message": "A query attribute must be specified and must be a string."}]}, headers)
        try:
            document = parse(query)
            operation = document.operations[0] if document.operations else None
            if operation is None:
                raise ValidationError([{"message": "No operation given"}])
            validate(document, f"query {operation.name}" if operation.name else "query")
        except GraphQLSyntaxError as error:
            entry["status"] = 200
            self._record(entry)
            return _send(handler, 200, {"errors": [{"message": error.message, "locations": [
                {"line": error.line, "column": error.column}]}]}, headers)
        except ValidationError as error:
            entry["status"] = 200
            self._record(entry)
            return _send(handler, 200, {"errors": error.errors}, headers)
        points = cost(document, variables)
        if self.budgets.remaining(identity, "graphql") < points:
            return self._primary(handler, entry, headers, identity, "graphql", request_id)
        self.budgets.charge(identity, "graphql", points)
        entry["points"] = points
        budget = self.budgets.snapshot(identity, "graphql")
        rate_limit = {
            "cost": points, "limit": budget.limit, "remaining": budget.remaining, "used": budget.used,
            "resetAt": datetime.fromtimestamp(budget.reset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "nodeCount": 0,
        }
        ctx = Context(self.world, f"standin-bot-{identity.split(':', 1)[1]}", rate_limit, dict(variables))
        with self.lock:  # the world may be edited by a control call meanwhile
            data = execute(document, ctx)
        answer: dict[str, Any] = {"data": data}
        if ctx.errors:
            answer["errors"] = ctx.errors
        headers.update(self.budgets.headers(identity, "graphql"))
        entry["status"] = 200
        self._record(entry)
        return _send(handler, 200, answer, headers)

    def _rate_limit_json(self, identity: str) -> dict[str, Any]:
        resources = {}
        for resource in ("core", "graphql"):
            b = self.budgets.snapshot(identity, resource)
            resources[resource] = {"limit": b.limit, "used": b.used, "remaining": b.remaining, "reset": int(b.reset)}
        return {"resources": resources, "rate": resources["core"]}

    # -- control ------------------------------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        data = json.loads(body) if body else None
        if path == "/_standin/health":
            return 200, {"ok": True}
        if path == "/_standin/log" and method == "GET":
            with self.lock:
                return 200, {"entries": list(self.log)}
        if path == "/_standin/log/clear":
            with self.lock:
                self.log.clear()
            return 200, {"ok": True}
        if path == "/_standin/budgets" and method == "GET":
            return 200, self.budgets.all()
        if path == "/_standin/budgets/clear":
            self.budgets.clear()
            return 200, {"ok": True}
        if path == "/_standin/budget":
            token = data.get("token")
            identity = f"user:{self.tokens[token]}" if token else f"ip:{data.get('ip', '127.0.0.1')}"
            self.budgets.set_remaining(identity, data.get("resource", "core"), int(data["remaining"]), data.get("reset_in"))
            return 200, {"ok": True}
        if path == "/_standin/faults":
            with self.lock:
                if method == "DELETE":
                    self.faults.clear()
                else:
                    self.faults.extend(data if isinstance(data, list) else [data])
            return 200, {"ok": True}
        if path == "/_standin/repos":
            with self.lock:
                repo = self.world.update(data["full_name"], data.get("changes") or {})
            return 200, repo
        if path == "/_standin/world" and method == "PUT":
            with self.lock:
                self.world = World(data["repos"] if isinstance(data, dict) else data)
            return 200, {"ok": True}
        if path == "/_standin/world" and method == "GET":
            with self.lock:
                return 200, {"repos": self.world.dump()}
        if path == "/_standin/config":
            if "latency" in data:
                self.latency = float(data["latency"])
            return 200, {"ok": True}
        return 404, {"message": f"no control endpoint {method} {path}"}


def _graphql_text(body: bytes) -> str:
    try:
        request = json.loads(body)
        return str(request.get("query", ""))
    except (ValueError, AttributeError):
        return ""


def _send(handler: Any, status: int, payload: Any, headers: dict[str, str]) -> None:
    body = b"" if payload is None or status in (204, 304) else json.dumps(payload).encode()
    _send_bytes(handler, status, body, headers)


def _send_bytes(handler: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("X-GitHub-Media-Type", "github.v3; format=json")
    for name, value in headers.items():
        handler.send_header(name, value)
    if status not in (204, 304):
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if status not in (204, 304) and handler.command != "HEAD":
        handler.wfile.write(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        try:
            self.server.standin.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the log endpoint has it all
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], standin: StandIn) -> None:
        super().__init__(address, Handler)
        self.standin = standin
