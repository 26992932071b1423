"""Why a fetch failed, in words a person understands.

Every failed probe is recorded as ``"<kind>: <detail>"``. The kind comes from a small
fixed vocabulary (``KINDS``) so that runs can be counted and compared
(``sites/failed/<kind>`` in the stats); the detail says what happened and where.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Response
from twisted.internet import error as twisted_error
from twisted.python.failure import Failure

KINDS = (
    "timeout",
    "dns",
    "connection refused",
    "connection lost",
    "tls",
    "too large",
    "redirect loop",
    "rate limited",
    "http error",
    "empty answer",
    "not json",
    "truncated json",
    "malformed json",
    "wrong shape",
    "ckan error",
    "not a ckan site",
    "no url",
    "bad url",
    # GitHub (extensions spider)
    "not github",
    "not found",
    "blocked",
    "graphql error",
    "needs token",
    # The crawl was told to stop (scrapyd cancel, Ctrl-C) while this was still to do.
    "stopped",
    "error",
)


@dataclass
class FetchError(Exception):
    """A failed fetch or an unusable answer, with its kind and a human detail."""

    kind: str
    detail: str
    #: The HTTP status when the failure is an HTTP answer.
    status: int | None = None

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class BlockedAddressRequest(IgnoreRequest):
    """A request refused because its host is not a public address
    (ckancrawl/middlewares/address_guard.py); the message says which and why."""


def describe_exception(exc: BaseException | Failure, timeout: float | None = None) -> FetchError:
    """Turn a download exception (or a Twisted Failure) into a FetchError."""
    if isinstance(exc, Failure):
        exc = exc.value
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, BlockedAddressRequest):
        return FetchError("blocked", str(exc))
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (DownloadTimeoutError, twisted_error.TimeoutError, TimeoutError)):
        after = f" after {timeout:g} s" if timeout else ""
        return FetchError("timeout", f"no complete answer{after}")
    if isinstance(exc, (CannotResolveHostError, twisted_error.DNSLookupError)):
        return FetchError("dns", f"host name could not be resolved ({text})")
    if isinstance(exc, (DownloadConnectionRefusedError, twisted_error.ConnectionRefusedError)):
        return FetchError("connection refused", "nothing listens at that address")
    if _is_tls_error(exc):
        openssl_reason = re.findall(r"'([^']+)'\)\]", text)
        return FetchError("tls", f"TLS handshake failed ({openssl_reason[-1] if openssl_reason else text})")
    if isinstance(exc, DownloadCancelledError) and "max size" in text.lower():
        return FetchError("too large", text)
    if isinstance(exc, IgnoreRequest) and "DOWNLOAD_MAXSIZE" in text and "decompress" in text:
        # HttpCompressionMiddleware counts the decompressed size (compression bombs).
        sizes = re.search(r"\(([^()]*compressed[^()]*)\) exceeded DOWNLOAD_MAXSIZE \((\d+) B\)", text)
        detail = (f"the answer decompresses past DOWNLOAD_MAXSIZE ({sizes.group(2)} B; {sizes.group(1)})"
                  if sizes else text)
        url = re.search(r"<\d+ (\S+)>", text)
        return FetchError("too large", detail + (f" at {url.group(1)}" if url else ""))
    if isinstance(exc, IgnoreRequest) and "redirect" in text.lower():
        return FetchError("redirect loop", text)
    if isinstance(exc, UnsupportedURLSchemeError):
        return FetchError("bad url", text)
    if isinstance(exc, ValueError) and "url" in text.lower():
        return FetchError("bad url", text)
    if isinstance(
        exc,
        (
            ResponseDataLossError,
            DownloadFailedError,
            twisted_error.ConnectionLost,
            twisted_error.ConnectionDone,
            twisted_error.ConnectError,
        ),
    ):
        return FetchError("connection lost", f"the connection broke before the answer was complete ({text})")
    return FetchError("error", f"{type(exc).__name__}: {text}")


def _is_tls_error(exc: BaseException) -> bool:
    """Twisted wraps TLS failures (ResponseNeverReceived, ConnectionLost...) and Scrapy
    wraps those again: look through causes and the wrapped Failures' ``reasons``."""
    try:
        from OpenSSL.SSL import Error as OpenSSLError
    except ImportError:  # pragma: no cover - pyOpenSSL is a Scrapy dependency
        OpenSSLError = ()  # type: ignore[assignment]
    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Failure):
            current = current.value
        if isinstance(current, OpenSSLError) or "ssl" in type(current).__name__.lower():
            return True
        pending += [getattr(current, "__cause__", None), getattr(current, "__context__", None)]
        pending += list(getattr(current, "reasons", None) or [])
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, (BaseException, Failure, list))]
        for arg in getattr(current, "args", ()):
            if isinstance(arg, list):
                pending += arg
    return "SSL routines" in str(exc)


def response_error(response: Response) -> FetchError:
    """Describe a non-JSON or error HTTP answer that carries no CKAN envelope."""
    body = response.body.lstrip()[:512].lower()
    if response.status == 429:
        retry_after = response.headers.get(b"Retry-After", b"").decode("latin-1")
        hint = f" (Retry-After: {retry_after})" if retry_after else ""
        return FetchError("rate limited", f"HTTP 429 Too Many Requests{hint} at {response.url}", 429)
    if response.status >= 400:
        return FetchError("http error", f"HTTP {response.status} at {response.url}", response.status)
    if not body:
        return FetchError("empty answer", f"HTTP {response.status} with an empty body at {response.url}")
    if body.startswith(b"<"):
        return FetchError("not json", f"an HTML page where JSON was expected at {response.url}")
    return FetchError("not json", f"the answer is not JSON at {response.url}")


def decode_json(response: Response) -> Any:
    """Parse a JSON body, telling truncated JSON from malformed JSON and from HTML."""
    body = response.body
    stripped = body.strip()
    if not stripped or stripped[:1] not in b"{[\"-0123456789tfn":
        raise response_error(response)
    text = _decode_text(response)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # The body stopped early: the connection closed without Content-Length
        # (Scrapy flags it "partial"), or the error sits at the very end of the input.
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        if at_end or "partial" in response.flags:
            raise FetchError(
                "truncated json", f"the JSON ends early after {len(body)} bytes at {response.url}"
            ) from None
        raise FetchError(
            "malformed json", f"{exc.msg} at line {exc.lineno} column {exc.colno} of {response.url}"
        ) from None


def _decode_text(response: Response) -> str:
    """JSON is UTF-8 by its RFC; a declared other charset is honoured, bad bytes are not."""
    try:
        return response.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        declared = getattr(response, "_declared_encoding", lambda: None)()
        if declared and declared.lower().replace("-", "") not in ("utf8", "utf"):
            try:
                return response.body.decode(declared)
            except (UnicodeDecodeError, LookupError):
                pass
        raise FetchError(
            "malformed json", f"invalid UTF-8 at byte {exc.start} of {response.url}"
        ) from None
