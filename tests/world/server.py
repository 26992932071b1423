"""The world's HTTP/1.1 server: one asyncio process, every portal on its own address.

Run: ``python -m tests.world.server SPEC.json [--watch-stdin]``. SPEC.json is
``{"port": 0, "tls_port": 0, "certfile": ..., "keyfile": ..., "portals": [...]}``
(portals as :func:`tests.world.spec.portal_to_dict`; port 0 picks a free port). Each
host address is bound explicitly at the shared plain port, and hosts with ``tls`` also
at the shared TLS port; 127.0.0.1 at the plain port is the control endpoint. When every
socket is bound, one JSON line goes to stdout: ``{"ready": true, "port": P,
"tls_port": Q, "pid": ..., "sockets": N}``. SIGTERM, SIGINT, or (with --watch-stdin)
the end of stdin stop it.

Control endpoint (http://127.0.0.1:P):
- ``GET /__world__/stats[?host=ADDRESS]``: per host address: ``requests``, ``paths``
  (path -> count, query left out), ``targets`` (path?query -> count), ``statuses``,
  ``connections_total``, ``open_connections``, ``max_connections`` (most connections
  open at once), ``in_flight``, ``max_in_flight`` (most requests being answered at
  once); plus totals and the server's CPU seconds.
- ``POST /__world__/reset``: zero the statistics and re-arm the 429 counters.
- ``POST /__world__/datasets`` with ``{"host": ADDRESS, "remove": [i...], "add": [i...],
  "modify": [i...], "restore": [i...]}``: change a portal's datasets by index (tests.world.datasets).
- ``GET /__world__/ping``.

Answers: keep-alive (HTTP/1.1 persistent unless ``Connection: close``), requests on a
connection answered in order, ``latency_ms`` of the host added to every answer. What a
host answers is in :meth:`World.reply`; CKAN's side in :mod:`tests.world.ckan_api`.
Only the standard library is used.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import errno
import json
import os
import resource
import signal
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.world import ckan_api, pages
from tests.world.datasets import DatasetStore
from tests.world.spec import Fault, HostSpec, fill_ports, portal_from_dict

CONTROL_ADDRESS = "127.0.0.1"
MAX_HEAD = 64 * 1024
#: Serialised action results kept for reuse (bytes).
CACHE_BUDGET = 64 * 1024 * 1024


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: "normal"; "cut_length": Content-Length of the whole body, half of it sent, then
    #: close; "cut_close": no Content-Length, half the body, then a clean close.
    mode: str = "normal"

    def encode(self, keep_alive: bool, head_only: bool) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {pages.reason_phrase(self.status)}", "Server: ckancrawl-world"]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        body = self.body
        if self.mode == "cut_close":
            lines.append("Connection: close")
            body = body[: len(body) // 2]
        else:
            lines.append(f"Content-Length: {len(body)}")
            if self.mode == "cut_length":
                body = body[: len(body) // 2]
            elif not keep_alive:
                lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + body


def json_reply(status: int, data: Any) -> Reply:
    return Reply(status, json.dumps(data).encode(), ckan_api.JSON_TYPE)


class HostState:
    """A host's spec and what the server saw of it."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.open_connections = 0
        self.in_flight = 0
        self.datasets = DatasetStore(spec.ckan.datasets) if spec.ckan and spec.ckan.datasets else None
        self.reset()

    def reset(self) -> None:
        """Zero the counters; what is open now stays counted."""
        self.requests = 0
        self.paths: collections.Counter[str] = collections.Counter()
        self.targets: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.connections_total = 0
        self.max_connections = self.open_connections
        self.max_in_flight = self.in_flight
        self.rate_limit_left = self.spec.rate_limit_first
        #: Calls per action, for faults limited to some calls (Fault.calls).
        self.action_calls: collections.Counter[str] = collections.Counter()

    def stats(self) -> dict[str, Any]:
        return {
            "hostname": self.spec.hostname,
            "role": self.spec.role,
            "requests": self.requests,
            "paths": dict(self.paths),
            "targets": dict(self.targets),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "connections_total": self.connections_total,
            "open_connections": self.open_connections,
            "max_connections": self.max_connections,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "action_calls": dict(self.action_calls),
            "datasets": self.datasets.count if self.datasets is not None else None,
        }


class ResultCache:
    """Serialised action results by (address, action, params), within a byte budget."""

    def __init__(self, budget: int = CACHE_BUDGET) -> None:
        self.budget = budget
        self.size = 0
        self.entries: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: tuple, value: bytes) -> None:
        if len(value) > self.budget // 4:
            return
        self.entries[key] = value
        self.size += len(value)
        while self.size > self.budget:
            _, old = self.entries.popitem(last=False)
            self.size -= len(old)


class World:
    """What every host answers."""

    def __init__(self, hosts: list[HostSpec]) -> None:
        self.hosts = {h.address: HostState(h) for h in hosts}
        if len(self.hosts) != len(hosts):
            raise ValueError("two hosts share an address")
        self.port = 0
        self.tls_port: int | None = None
        self.cache = ResultCache()
        self.started = time.monotonic()

    # -- control ----------------------------------------------------------------------

    def control(self, request: Request) -> Reply:
        if request.path == "/__world__/ping":
            return json_reply(200, {"ok": True})
        if request.path == "/__world__/reset" and request.method in ("POST", "GET"):
            for state in self.hosts.values():
                state.reset()
            return json_reply(200, {"reset": True})
        if request.path == "/__world__/datasets" and request.method == "POST":
            change = json.loads(request.body or b"{}")
            state = self.hosts.get(change.get("host", ""))
            if state is None or state.datasets is None:
                return json_reply(404, {"error": f"no host with datasets at {change.get('host')!r}"})
            state.datasets.apply(change)
            return json_reply(200, {"datasets": state.datasets.count})
        if request.path == "/__world__/stats":
            params = dict(parse_qsl(request.query))
            states = self.hosts
            if "host" in params:
                if params["host"] not in states:
                    return json_reply(404, {"error": f"no host {params['host']}"})
                states = {params["host"]: states[params["host"]]}
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return json_reply(200, {
                "port": self.port,
                "tls_port": self.tls_port,
                "uptime_s": round(time.monotonic() - self.started, 3),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "max_rss_kb": usage.ru_maxrss,
                "requests": sum(s.requests for s in self.hosts.values()),
                "hosts": {address: s.stats() for address, s in states.items()},
            })
        return json_reply(404, {"error": "unknown control path"})

    # -- hosts ------------------------------------------------------------------------

    async def reply(self, state: HostState, request: Request, tls: bool) -> Reply:
        spec = state.spec
        limited = state.rate_limit_left > 0
        if limited:
            state.rate_limit_left -= 1
        if spec.latency_ms:
            await asyncio.sleep(spec.latency_ms / 1000)
        if limited:
            return Reply(429, pages.server_error_page(429), pages.HTML_TYPE,
                         [("Retry-After", str(spec.retry_after))])
        if spec.fault is not None:
            return await self._faulty(spec.fault, lambda: self._role_reply(spec, request, tls), spec, "")
        return await self._role_reply(spec, request, tls)

    async def _role_reply(self, spec: HostSpec, request: Request, tls: bool) -> Reply:
        if spec.role == "redirect":
            location = fill_ports(spec.redirect_to, self.port, self.tls_port)
            location += request.target if spec.redirect_keep_path else "/"
            return Reply(spec.redirect_status, pages.server_error_page(spec.redirect_status), pages.HTML_TYPE,
                         [("Location", location)])
        if spec.role == "status":
            headers = [("Retry-After", str(spec.retry_after))] if spec.status in (429, 503) else []
            return Reply(spec.status, pages.server_error_page(spec.status), pages.HTML_TYPE, headers)
        if spec.role == "html":
            return Reply(200, pages.plain_site_page(spec.title, request.path), pages.HTML_TYPE)
        if spec.https_redirect and not tls:
            location = f"https://{spec.name}:{self.tls_port}{request.target}"
            return Reply(301, pages.server_error_page(301), pages.HTML_TYPE, [("Location", location)])
        return await self._ckan(spec, request, tls)

    async def _ckan(self, spec: HostSpec, request: Request, tls: bool) -> Reply:
        ckan = spec.ckan
        assert ckan is not None
        path = request.path
        if ckan.prefix:
            if path == "/" and ckan.root_redirect:
                origin = f"{'https' if tls else 'http'}://{request.headers.get('host') or spec.name}"
                return Reply(302, pages.server_error_page(302), pages.HTML_TYPE,
                             [("Location", origin + ckan.prefix + "/")])
            if path == "/":
                return Reply(200, pages.plain_site_page(f"Home of {ckan.site_title}", path), pages.HTML_TYPE)
            if path != ckan.prefix and not path.startswith(ckan.prefix + "/"):
                return Reply(404, pages.server_error_page(404), pages.HTML_TYPE)
            path = path[len(ckan.prefix):] or "/"
        for api_path in ckan.api_paths:
            if path.startswith(api_path):
                return await self._action(spec, path[len(api_path):], request)
        if path.startswith(("/api/3/action/", "/api/action/")):
            # The route exists in CKAN but the proxy in front does not forward it.
            return Reply(404, pages.server_error_page(404), pages.HTML_TYPE)
        if path.rstrip("/") in ("/api", "/api/1", "/api/2", "/api/3"):
            version = int(path.rstrip("/")[-1]) if path.rstrip("/") != "/api" else 1
            return json_reply(200, {"version": version})
        status, body = pages.ckan_page_for(ckan, path)
        return Reply(status, body, pages.HTML_TYPE)

    async def _action(self, spec: HostSpec, action: str, request: Request) -> Reply:
        ckan = spec.ckan
        assert ckan is not None
        if not action or "/" in action:
            status, body = pages.ckan_page_for(ckan, "/no-such-page")
            return Reply(status, body, pages.HTML_TYPE)
        state = self.hosts[spec.address]
        state.action_calls[action] += 1
        fault = ckan.faults.get(action)
        if fault is not None and (fault.calls or fault.min_rows):
            try:
                applies = fault.applies(state.action_calls[action], _request_params(request))
            except ValueError:
                applies = False
            if not applies:
                fault = None
        if fault is not None:
            return await self._faulty(fault, lambda: self._run(spec, action, request), spec, action)
        return await self._run(spec, action, request)

    async def _faulty(self, fault: Fault, normal: Any, spec: HostSpec, action: str) -> Reply:
        """Answer with ``fault`` applied; ``normal`` makes the answer without it."""
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
            return await normal()
        if fault.kind == "http":
            return Reply(fault.status, pages.server_error_page(fault.status), pages.HTML_TYPE)
        if fault.kind == "html":
            ckan = spec.ckan
            body = pages.ckan_page_for(ckan, "/")[1] if ckan else pages.plain_site_page(spec.title, "/")
            return Reply(200, body, pages.HTML_TYPE)
        if fault.kind == "ckan_error":
            ckan = spec.ckan
            help_text = ckan_api.help_value(ckan.version, ckan.site_url, ckan.prefix, action) if ckan else ""
            return _as_reply(ckan_api.error_answer(
                fault.status, help_text, {"__type": fault.error_type or "Error", "message": fault.message or ""}))
        answer = await normal()
        if fault.kind == "empty":
            return Reply(200, b"", ckan_api.JSON_TYPE)
        if fault.kind == "malformed":
            # A Python repr instead of JSON: single quotes, True.
            body = answer.body.replace(b'"', b"'").replace(b"true", b"True")
            return Reply(200, body, ckan_api.JSON_TYPE)
        if fault.kind == "truncated_length":
            return Reply(answer.status, answer.body, answer.content_type, mode="cut_length")
        if fault.kind == "truncated_close":
            return Reply(answer.status, answer.body, answer.content_type, mode="cut_close")
        raise ValueError(f"unknown fault {fault.kind}")

    async def _run(self, spec: HostSpec, action: str, request: Request) -> Reply:
        ckan = spec.ckan
        assert ckan is not None
        if action not in ckan_api.ACTIONS:
            return _as_reply(ckan_api.bad_request(f"Action name not known: {action}"))
        help_text = ckan_api.help_value(ckan.version, ckan.site_url, ckan.prefix, action)
        try:
            params = _request_params(request)
        except ValueError as exc:
            return _as_reply(ckan_api.bad_request(f"JSON Error: {exc}"))
        store = self.hosts[spec.address].datasets
        if store is not None and action in ("package_search", "package_show", "package_list"):
            try:
                result = ckan_api.run_dataset_action(store, action, params)
            except ckan_api.CkanError as error:
                return _as_reply(ckan_api.error_answer(error.status, help_text, error.error))
            return Reply(200, ckan_api.ok_body(help_text, result), ckan_api.JSON_TYPE)
        key = (spec.address, action, tuple(sorted(params.items())))
        result = self.cache.get(key)
        if result is None:
            try:
                result = json.dumps(ckan_api.run_action(ckan, action, params)).encode()
            except ckan_api.CkanError as error:
                return _as_reply(ckan_api.error_answer(error.status, help_text, error.error))
            except ckan_api.UnhandledError:
                return Reply(500, pages.pylons_error_page(), pages.HTML_TYPE)
            self.cache.put(key, result)
        return Reply(200, ckan_api.ok_body(help_text, result), ckan_api.JSON_TYPE)


def _as_reply(answer: ckan_api.Answer) -> Reply:
    return Reply(answer.status, answer.body, answer.content_type)


def _request_params(request: Request) -> dict[str, str]:
    params = dict(parse_qsl(request.query, keep_blank_values=True))
    if request.method == "POST" and request.body.strip():
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("Request data JSON decoded to a non-dictionary")
        for name, value in data.items():
            params[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return params


def parse_request(buffer: bytes) -> tuple[Request, int] | None | str:
    """(request, bytes used), None when more bytes are needed, or an error message."""
    if buffer[:1] and not buffer[:1].isalpha():
        return "not an HTTP request"  # e.g. a TLS ClientHello on the plain port
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return "request head too large" if len(buffer) > MAX_HEAD else None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "bad request line"
    method, target, version = parts
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return "chunked request bodies are not supported"
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError:
        return "bad Content-Length"
    used = end + 4 + length
    if len(buffer) < used:
        return None
    path, _, query = target.partition("?")
    if "://" in path:  # absolute-form target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return Request(method, target, path or "/", query, version, headers, buffer[end + 4:used]), used


class Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them in order."""

    def __init__(self, world: World, tls: bool) -> None:
        self.world = world
        self.tls = tls
        self.buffer = b""
        self.task: asyncio.Task | None = None
        self.transport: asyncio.Transport | None = None
        self.state: HostState | None = None
        self.control = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        address = transport.get_extra_info("sockname")[0]
        self.state = self.world.hosts.get(address)
        self.control = self.state is None and address == CONTROL_ADDRESS and not self.tls
        if self.state is not None:
            self.state.connections_total += 1
            self.state.open_connections += 1
            self.state.max_connections = max(self.state.max_connections, self.state.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is not None:
            self.state.open_connections -= 1
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.task is None:
            self._next()

    def _next(self) -> None:
        parsed = parse_request(self.buffer)
        if parsed is None:
            return
        assert self.transport is not None
        if isinstance(parsed, str):
            reply = Reply(400, f"Bad Request: {parsed}\n".encode(), "text/plain")
            self.transport.write(reply.encode(keep_alive=False, head_only=False))
            self.transport.close()
            self.buffer = b""
            return
        request, used = parsed
        self.buffer = self.buffer[used:]
        self.task = asyncio.get_running_loop().create_task(self._answer(request))

    async def _answer(self, request: Request) -> None:
        state = self.state
        transport = self.transport
        assert transport is not None
        if state is not None:
            state.requests += 1
            state.paths[request.path] += 1
            state.targets[request.target] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state is not None:
                reply = await self.world.reply(state, request, self.tls)
            elif self.control:
                reply = self.world.control(request)
            else:
                reply = Reply(404, pages.server_error_page(404), pages.HTML_TYPE)
            if transport.is_closing():
                return
            keep_alive = request.keep_alive and reply.mode == "normal"
            transport.write(reply.encode(keep_alive, head_only=request.method == "HEAD"))
            if state is not None:
                state.statuses[reply.status] += 1
            if not keep_alive:
                transport.close()
                return
        except asyncio.CancelledError:
            return
        finally:
            if state is not None:
                state.in_flight -= 1
            self.task = None
        if self.buffer:
            self._next()


def _listening_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def bind_all(hosts: list[HostSpec], port: int, tls_port: int | None) -> tuple[int, int | None, list, list]:
    """Bind the control address and every host at one plain port (and TLS hosts at one
    TLS port). Port 0 picks a free one, trying again if another process holds it on one
    of the addresses."""
    tls_hosts = [h for h in hosts if h.tls]
    for _ in range(50):
        plain: list[socket.socket] = []
        secure: list[socket.socket] = []
        try:
            plain.append(_listening_socket(CONTROL_ADDRESS, port))
            chosen = plain[0].getsockname()[1]
            plain += [_listening_socket(h.address, chosen) for h in hosts]
            chosen_tls = None
            if tls_hosts:
                secure.append(_listening_socket(tls_hosts[0].address, tls_port or 0))
                chosen_tls = secure[0].getsockname()[1]
                secure += [_listening_socket(h.address, chosen_tls) for h in tls_hosts[1:]]
            return chosen, chosen_tls, plain, secure
        except OSError as exc:
            for sock in plain + secure:
                sock.close()
            if exc.errno != errno.EADDRINUSE or (port and (tls_port or not tls_hosts)):
                raise
    raise RuntimeError("no free port shared by every address after 50 tries")


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
        return
    loop.default_exception_handler(context)


async def serve(config: dict[str, Any], watch_stdin: bool) -> None:
    portals = [portal_from_dict(p) for p in config["portals"]]
    hosts = [h for p in portals for h in p.hosts]
    world = World(hosts)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_exceptions)
    port, tls_port, plain, secure = bind_all(hosts, int(config.get("port") or 0), config.get("tls_port") or None)
    world.port, world.tls_port = port, tls_port
    servers = [await loop.create_server(lambda: Connection(world, False), sock=s) for s in plain]
    if secure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config["certfile"], config["keyfile"])
        servers += [await loop.create_server(lambda: Connection(world, True), sock=s, ssl=context) for s in secure]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if watch_stdin:
        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                loop.remove_reader(sys.stdin.fileno())
                stop.set()
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    print(json.dumps({"ready": True, "port": port, "tls_port": tls_port, "pid": os.getpid(),
                      "hosts": len(hosts), "sockets": len(plain) + len(secure)}), flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="the world's JSON spec")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin reaches its end")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as handle:
        config = json.load(handle)
    _raise_file_limit()
    asyncio.run(serve(config, args.watch_stdin))


if __name__ == "__main__":
    main()
