"""A small blocking HTTP client for looking at the world from tests (http.client).

It resolves ``*.test`` names with the world's hosts mapping (as the Scrapy resolver
does), never follows redirects by itself unless asked, and reports what the wire
carried: status, headers, body, and whether the body was cut short.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

from tests.world.resolver import lookup


@dataclass
class Answer:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    #: The connection ended before Content-Length bytes arrived.
    incomplete: bool = False
    #: Every URL visited, redirects included.
    history: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class Unresolvable(Exception):
    pass


def get(url: str, hosts: Mapping[str, str] | None = None, *, timeout: float = 10.0,
        follow: bool = False, max_redirects: int = 20, method: str = "GET") -> Answer:
    """GET ``url``; with ``follow``, redirects are followed up to ``max_redirects``."""
    history = []
    for _ in range(max_redirects + 1):
        answer = _get_once(url, hosts or {}, timeout, method)
        history.append(url)
        answer.history = history
        if not follow or answer.status not in (301, 302, 303, 307, 308):
            return answer
        url = urljoin(url, answer.headers["location"])
    raise RuntimeError(f"more than {max_redirects} redirects: {' -> '.join(history[-4:])}")


def _get_once(url: str, hosts: Mapping[str, str], timeout: float, method: str) -> Answer:
    parts = urlsplit(url)
    address = lookup(hosts, parts.hostname or "")
    if address is None:
        raise Unresolvable(parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            address, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, headers={"Host": parts.netloc})
        response = connection.getresponse()
        incomplete = False
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            body, incomplete = exc.partial, True
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(url, response.status, headers, body, incomplete)
    finally:
        connection.close()


def raw_exchange(address: str, port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes, read until the server closes (or the timeout): for wire-level tests."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)
