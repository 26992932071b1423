"""A resource server on loopback: files of any size and the ways real servers misbehave.

Run: ``python -m tests.resource_server [--port 0] [--certfile C --keyfile K]``. It prints
``READY http://127.0.0.1:P [https://127.0.0.1:Q]`` once it listens (HTTPS too when given a
certificate, on its own port, same files) and serves until SIGTERM/SIGINT or the end of
stdin (``--watch-stdin``).
Only the standard library is used; it only listens on 127.0.0.1.

Every path serves a file; the query string says which file and how to serve it, so a
test's URL reads as its scenario (the path only matters for its extension):

- ``size`` (1024) and ``seed`` (0): the content, :class:`~tests.resource_server.content.Content`;
  ``prefix``: bytes the file starts with (percent-encoded, Latin-1), e.g. ``%25PDF-1.7``;
  ``text=1``: printable text (letters, digits, commas, newlines) instead of any bytes.
- ``type``: the Content-Type header (none by default).
- ``cl``: how the length is announced: ``exact`` (default), ``none`` (no
  Content-Length, the body ends when the connection closes), ``chunked``
  (Transfer-Encoding: chunked), or a number: a Content-Length that lies when it is not
  the size. The whole content is sent either way, then the connection is closed.
- ``head``: the status a HEAD gets (e.g. 405, 501, 403); GET still works.
- ``range``: ``honor`` (default: ``Range: bytes=a-b`` gets a 206) or ``ignore``.
- ``encoding=gzip``: the content is sent gzip-compressed with ``Content-Encoding: gzip``.
- ``bomb``: a gzip bomb: ``Content-Encoding: gzip`` and a body that inflates to
  ``bomb`` zero bytes (about 1000 times smaller on the wire).
- ``redirect``: answer ``redirect_status`` (302) with this Location.
- ``status``: answer this status with a small HTML page instead of the file.
- ``drip``: send the body at this many bytes per second, in ten pieces per second.
- ``delay``: seconds to wait before the status line.
- ``group``: a name; ``/_stats`` reports the most requests of each group answered at once.

Control:
- ``GET /_log``: JSON list of the requests received (method, target, some headers).
- ``GET /_stats``: ``requests``, ``max_in_flight`` (most file requests answered at once,
  abandoned ones included until the server notices) and ``groups`` (the same per group).
- ``POST /_log/clear``: forget the log and reset ``max_in_flight``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

from tests.resource_server.content import BLOCK, Content

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024
LOGGED_HEADERS = ("range", "accept-encoding", "user-agent", "host")
REASONS = {
    200: "OK", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    416: "Range Not Satisfiable", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


class Disconnect(Exception):
    """The answer ends the connection (no keep-alive after it)."""


@lru_cache(maxsize=4)
def gzip_bomb(inflated_size: int) -> bytes:
    """gzip of ``inflated_size`` zero bytes, made once per size."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(BLOCK)
    parts = []
    left = inflated_size
    while left > 0:
        parts.append(packer.compress(zeros[:min(left, BLOCK)]))
        left -= BLOCK
    parts.append(packer.flush())
    return b"".join(parts)


class ResourceServer:
    def __init__(self) -> None:
        self.log: list[dict[str, object]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: group -> [in flight, most at once], for requests with ``group=NAME``.
        self.groups: dict[str, list[int]] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                counted = not request.path.startswith("/_")
                group = self.groups.setdefault(request.params.get("group", ""), [0, 0])
                if counted:
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    group[0] += 1
                    group[1] = max(group[1], group[0])
                try:
                    keep_alive = await self._answer(request, writer)
                finally:
                    if counted:
                        self.in_flight -= 1
                        group[0] -= 1
                if not keep_alive or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, Disconnect):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise Disconnect() from None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length:
            await reader.readexactly(length)
        params = {k: v[-1] for k, v in parse_qs(urlsplit(target).query, keep_blank_values=True).items()}
        return Request(method.upper(), target, headers, params)

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Send one answer; return whether the connection may carry another request."""
        if request.path == "/_log":
            return await self._send_json(writer, self.log)
        if request.path == "/_log/clear":
            self.log.clear()
            self.max_in_flight = self.in_flight
            self.groups.clear()
            return await self._send_json(writer, {"cleared": True})
        if request.path == "/_stats":
            return await self._send_json(writer, {
                "requests": len(self.log), "max_in_flight": self.max_in_flight,
                "groups": {name: most for name, (_, most) in self.groups.items() if name},
            })
        self.log.append({
            "method": request.method,
            "target": request.target,
            "headers": {k: v for k, v in request.headers.items() if k in LOGGED_HEADERS},
        })
        p = request.params
        if "delay" in p:
            await asyncio.sleep(float(p["delay"]))
        if "redirect" in p:
            status = int(p.get("redirect_status", 302))
            await self._send_head(writer, status, {"Location": p["redirect"], "Content-Length": "0"})
            return True
        if "status" in p:
            page = f"<!DOCTYPE html><html><body>{int(p['status'])}</body></html>".encode()
            await self._send_head(writer, int(p["status"]), {
                "Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(page))})
            if request.method != "HEAD":
                writer.write(page)
            return True
        if request.method == "HEAD" and "head" in p:
            await self._send_head(writer, int(p["head"]), {"Content-Length": "0", "Allow": "GET"})
            return True
        return await self._send_file(request, writer)

    async def _send_file(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        p = request.params
        headers: dict[str, str] = {}
        if "type" in p:
            headers["Content-Type"] = p["type"]
        if "bomb" in p:
            body_parts = [await asyncio.to_thread(gzip_bomb, int(p["bomb"]))]
            size = len(body_parts[0])
            headers["Content-Encoding"] = "gzip"
            chunks = iter(body_parts)
        else:
            content = Content(int(p.get("size", 1024)), int(p.get("seed", 0)), unquote_to_bytes(p.get("prefix", "")),
                              text=p.get("text") == "1")
            start, end, status = 0, content.size, 200
            wanted = request.headers.get("range", "")
            if wanted.startswith("bytes=") and p.get("range", "honor") == "honor" and "encoding" not in p:
                first, _, last = wanted[6:].partition("-")
                start = int(first or 0)
                end = min(content.size, int(last) + 1 if last else content.size)
                if start >= content.size:
                    await self._send_head(writer, 416, {"Content-Range": f"bytes */{content.size}", "Content-Length": "0"})
                    return True
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{content.size}"
            headers["Accept-Ranges"] = "bytes"
            chunks = content.chunks(start, end)
            size = end - start
            if p.get("encoding") == "gzip":
                chunks = _gzip(chunks)
                headers["Content-Encoding"] = "gzip"
                data = b"".join(chunks)  # small test files only
                chunks, size = iter([data]), len(data)
            return await self._send_body(request, writer, status, headers, chunks, size)
        return await self._send_body(request, writer, 200, headers, chunks, size)

    async def _send_body(self, request: Request, writer: asyncio.StreamWriter, status: int,
                         headers: dict[str, str], chunks, size: int) -> bool:
        p = request.params
        announce = p.get("cl", "exact")
        keep_alive = True
        if announce == "exact":
            headers["Content-Length"] = str(size)
        elif announce == "none":
            headers["Connection"] = "close"
            keep_alive = False
        elif announce == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = announce
            headers["Connection"] = "close"
            keep_alive = False
        await self._send_head(writer, status, headers)
        if request.method == "HEAD":
            return keep_alive
        drip = float(p["drip"]) if "drip" in p else None
        for chunk in chunks:
            if drip:
                piece = max(1, int(drip / 10))
                for at in range(0, len(chunk), piece):
                    writer.write(chunk[at:at + piece])
                    await writer.drain()
                    await asyncio.sleep(0.1)
                continue
            if announce == "chunked":
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                writer.write(chunk)
            await writer.drain()
        if announce == "chunked":
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return keep_alive

    async def _send_head(self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()

    async def _send_json(self, writer: asyncio.StreamWriter, value: object) -> bool:
        body = json.dumps(value).encode()
        await self._send_head(writer, 200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        writer.write(body)
        await writer.drain()
        return True


def _gzip(chunks):
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        if out := packer.compress(chunk):
            yield out
    yield packer.flush()


async def serve(port: int, watch_stdin: bool, certfile: str | None = None, keyfile: str | None = None) -> None:
    app = ResourceServer()
    server = await asyncio.start_server(app.handle, HOST, port, limit=MAX_HEAD)
    bases = [f"http://{HOST}:{server.sockets[0].getsockname()[1]}"]
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        tls_server = await asyncio.start_server(app.handle, HOST, 0, limit=MAX_HEAD, ssl=context)
        bases.append(f"https://{HOST}:{tls_server.sockets[0].getsockname()[1]}")
    print("READY " + " ".join(bases), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if watch_stdin:
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1024) or stop.set())
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.resource_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--watch-stdin", action="store_true")
    parser.add_argument("--certfile", help="also serve HTTPS (on a free port) with this certificate")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.watch_stdin, args.certfile, args.keyfile))
