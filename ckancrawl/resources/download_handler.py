"""Scrapy's HTTP download handler, plus a streaming, address-checked path for resource files.

Install it for both schemes (``DOWNLOAD_HANDLERS``)::

    DOWNLOAD_HANDLERS = {
        "http": "ckancrawl.resources.download_handler.ResourceDownloadHandler",
        "https": "ckancrawl.resources.download_handler.ResourceDownloadHandler",
    }

Requests without ``meta[FETCH_META]`` (every metadata request) go to Scrapy's
HTTP11DownloadHandler unchanged. Requests with a
:class:`~ckancrawl.resources.streaming.ResourceFetch` there (made by the resource facts
pipeline) are downloaded here, still inside Scrapy's downloader, so download slots,
AutoThrottle, the downloader middlewares (retries, redirects, user agent) and the
stats apply. What is different:

- The body is never collected: :class:`~ckancrawl.resources.streaming.BodyReader`
  counts, hashes and sniffs it chunk by chunk, and the Response has an empty body. The
  outcome is a :class:`~ckancrawl.resources.streaming.BodyResult` in
  ``response.meta[RESULT_META]``.
- Addresses are checked (:mod:`ckancrawl.resources.address_guard`): the host is resolved
  with the reactor's resolver (the one Scrapy installed, DNS cache included), refused if
  any of its addresses is not allowed, and the connection goes to the address that was
  checked. Redirects come back through the downloader as new requests, so each hop is
  checked the same way. A refused address raises :class:`BlockedAddressError` (not
  retried). Resource requests through a proxy are refused: the proxy would resolve the
  name, out of the guard's sight.
- Timeouts: ``download_timeout`` (meta) bounds the wait for the status line and each
  silence in the body (DownloadTimeoutError, retried); ``ResourceFetch.max_seconds``
  bounds the whole body (the result says ``timeout``, not retried: a slow drip stays
  slow).
- Resource connections have their own pool; at most RESOURCE_CONCURRENCY_PER_HOST of
  them are kept open per host.

Settings read: RESOURCE_ALLOW_PRIVATE, RESOURCE_CONCURRENCY_PER_HOST,
RESOURCE_HASH_IN_THREAD (see ckancrawl/pipelines/resource_facts.py) (and Scrapy's:
DOWNLOAD_BIND_ADDRESS, the TLS settings through Scrapy's context factory).
Stats: ``resource_download/bytes_read`` (body bytes read by resource downloads),
``resource_download/reads`` (socket reads they took),
``resource_download/body_seconds`` (time spent reading them, summed) and
``resource_download/body_cpu_seconds`` (CPU time of the whole process meanwhile, all
threads, summed: bodies read at the same time are counted more than once).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler, _LenientHTTP11ClientFactory
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Headers, Request, Response
from scrapy.utils.defer import ensure_awaitable, maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.python import to_bytes
from twisted.internet import defer, error as twisted_error
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IResolutionReceiver, IStreamClientEndpoint
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers as TxHeaders
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory
from zope.interface import implementer

from ckancrawl.resources.address_guard import AddressPolicy
from ckancrawl.resources.streaming import FETCH_META, RESULT_META, BodyReader, BodyResult, HashThread, ResourceFetch

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

#: Bytes of a non-2xx body read before the connection is dropped (redirects, error pages).
ERROR_BODY_LIMIT = 64 * 1024
#: Bytes asked of the socket per read on resource connections.
READ_SIZE = 1024 * 1024


class BlockedAddressError(Exception):
    """The resource's host resolves to an address that must not be fetched."""


class ProxyNotSupportedError(Exception):
    """A resource request was routed through a proxy (the address guard cannot see through it)."""


class ResourceDownloadHandler(HTTP11DownloadHandler):
    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        from twisted.internet import reactor

        settings = crawler.settings
        self._reactor = reactor
        self._stats = crawler.stats
        self._policy = AddressPolicy.from_setting(settings.get("RESOURCE_ALLOW_PRIVATE", False))
        self._resource_pool = HTTPConnectionPool(reactor, persistent=True)
        self._resource_pool.maxPersistentPerHost = max(1, settings.getint("RESOURCE_CONCURRENCY_PER_HOST", 2))
        # Scrapy's lenient parser (skips header lines without a colon), as for every request.
        self._resource_pool._factory = _LenientHTTP11ClientFactory
        self._hash_in_thread = settings.getbool("RESOURCE_HASH_IN_THREAD", True)
        bind = settings.get("DOWNLOAD_BIND_ADDRESS")
        self._resource_bind = (bind, 0) if isinstance(bind, str) else bind
        # Another handler that wants http(s) too (the rendering backend's) gets every
        # request that is not a resource download: handlers chain instead of competing.
        next_handler = settings.get("RESOURCE_NEXT_HANDLER")
        self._next = build_from_crawler(load_object(next_handler), crawler) if next_handler else None

    async def download_request(self, request: Request) -> Response:
        fetch = request.meta.get(FETCH_META)
        if fetch is None:
            if self._next is not None:
                return await ensure_awaitable(self._next.download_request(request))
            return await super().download_request(request)
        return await self._download_resource(request, fetch)

    def _hash_thread(self, md5: Any) -> HashThread:
        return HashThread(md5, self._reactor.callFromThread)

    async def close(self) -> None:
        await super().close()
        if self._next is not None:
            await ensure_awaitable(self._next.close())
        closing = self._resource_pool.closeCachedConnections()
        timer = self._reactor.callLater(self._disconnect_timeout, closing.callback, None)
        try:
            await maybe_deferred_to_future(closing)
        finally:
            if timer.active():
                timer.cancel()

    # -- resource downloads -------------------------------------------------------------

    async def _download_resource(self, request: Request, fetch: ResourceFetch) -> Response:
        if request.meta.get("proxy"):
            raise ProxyNotSupportedError(
                f"resource downloads do not go through proxies ({request.meta['proxy']}): "
                "the address check needs to resolve the host itself"
            )
        parsed = urlparse_cached(request)
        if parsed.scheme not in ("http", "https"):
            raise UnsupportedURLSchemeError(f"resource downloads are http or https, not {parsed.scheme}")
        timeout = float(request.meta.get("download_timeout") or 30)
        agent = Agent.usingEndpointFactory(
            self._reactor,
            _GuardedEndpointFactory(self._reactor, self._contextFactory, self._policy, timeout, self._resource_bind),
            pool=self._resource_pool,
        )
        url = urldefrag(request.url)[0]
        started = time.monotonic()
        answer = agent.request(to_bytes(request.method), to_bytes(url, "ascii"), TxHeaders(dict(request.headers)))
        # The Agent reports a cancelled request as ResponseNeverReceived: remember why.
        timer = self._reactor.callLater(timeout, answer.cancel)
        try:
            txresponse = await maybe_deferred_to_future(answer)
        except BlockedAddressError as exc:
            raise BlockedAddressError(f"{exc} for {url}") from None
        except Exception as exc:
            if not timer.active():
                raise DownloadTimeoutError(f"no answer from {parsed.hostname} within {timeout:g} s") from exc
            raise _download_exception(exc) from exc
        finally:
            if timer.active():
                timer.cancel()
        request.meta["download_latency"] = time.monotonic() - started

        peer = getattr(txresponse, "_scrapy_ip_address", None)
        if peer is not None and (refusal := self._policy.refusal(peer)):
            txresponse._transport.abortConnection()  # cannot happen with pinned addresses; checked anyway
            raise BlockedAddressError(f"refused to fetch from {refusal}")

        headers = Headers()
        if txresponse.length != UNKNOWN_LENGTH and request.method != "HEAD":
            headers[b"Content-Length"] = str(txresponse.length).encode()
        headers.update(txresponse.headers.getAllRawHeaders())
        result = BodyResult(
            content_encoding=_header(headers, b"Content-Encoding"),
            content_type=_header(headers, b"Content-Type"),
            content_range=_header(headers, b"Content-Range"),
            content_length=_int_header(headers, b"Content-Length"),
            peer=str(peer) if peer is not None else None,
        )
        request.meta[RESULT_META] = result
        status = int(txresponse.code)
        if request.method == "HEAD" or txresponse.length == 0:
            # No body (Twisted says length 0 for HEAD, 204 and 304 too).
            result.complete = True
            if fetch.hash and 200 <= status < 300 and request.method != "HEAD":
                result.md5 = "d41d8cd98f00b204e9800998ecf8427e"  # MD5 of no bytes
        else:
            await self._read_body(txresponse, result, fetch, status, timeout)
        version = txresponse.version
        return Response(
            url=url,
            status=status,
            headers=headers,
            body=b"",
            flags=[] if result.complete else ["resource_stopped"],
            ip_address=peer,
            protocol=f"{version[0].decode()}/{version[1]}.{version[2]}",
        )

    async def _read_body(
        self, txresponse: Any, result: BodyResult, fetch: ResourceFetch, status: int, timeout: float
    ) -> None:
        hash_body = fetch.hash and 200 <= status < 300
        read_limit = fetch.read_limit
        limit_reason = None
        if not 200 <= status < 300:
            read_limit = min(read_limit or ERROR_BODY_LIMIT, ERROR_BODY_LIMIT)
        elif result.content_length is not None and result.content_length > fetch.max_bytes:
            # Read only the start (for the format) of what would be too large to hash.
            hash_body = False
            read_limit = min(read_limit or fetch.max_bytes, fetch.max_bytes, ERROR_BODY_LIMIT)
            limit_reason = (
                f"too large: Content-Length {result.content_length} > "
                f"{fetch.max_bytes} bytes (RESOURCE_MAX_BYTES)"
            )
        finished: defer.Deferred[BodyResult] = defer.Deferred()
        reader = BodyReader(
            finished,
            result,
            hash_body=hash_body,
            max_bytes=fetch.max_bytes,
            read_limit=read_limit,
            max_seconds=fetch.max_seconds,
            idle_timeout=timeout,
            clock=self._reactor,
            stopped_reason=limit_reason,
            hash_thread=self._hash_thread if self._hash_in_thread else None,
        )
        cpu_before = time.process_time()
        txresponse.deliverBody(reader)
        try:
            await maybe_deferred_to_future(finished)
        finally:
            self._stats.inc_value(
                "resource_download/body_cpu_seconds", round(time.process_time() - cpu_before, 6), start=0.0
            )
            self._stats.inc_value("resource_download/bytes_read", result.received)
            self._stats.inc_value("resource_download/body_seconds", round(result.seconds, 6), start=0.0)
            self._stats.inc_value("resource_download/reads", result.reads)


def _header(headers: Headers, name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip() if value else None


def _int_header(headers: Headers, name: bytes) -> int | None:
    value = _header(headers, name)
    return int(value) if value and value.isdigit() else None


def _download_exception(exc: BaseException) -> BaseException:
    """Scrapy's download exceptions (what retries and describe_exception know)."""
    if isinstance(exc, (BlockedAddressError, ProxyNotSupportedError)):
        return exc
    if isinstance(exc, twisted_error.TimeoutError):  # connect timeout
        return DownloadTimeoutError(str(exc))
    if isinstance(exc, twisted_error.DNSLookupError):
        return CannotResolveHostError(str(exc))
    if isinstance(exc, twisted_error.ConnectionRefusedError):
        return DownloadConnectionRefusedError(str(exc))
    if isinstance(exc, SchemeNotSupported):
        return UnsupportedURLSchemeError(str(exc))
    if isinstance(exc, (ResponseFailed, ResponseNeverReceived)):
        return DownloadFailedError(str(exc))
    return exc


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects what the reactor's name resolver answers."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.done: defer.Deferred[list[str]] = defer.Deferred()

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.found.append(address.host)

    def resolutionComplete(self) -> None:
        self.done.callback(self.found)


@implementer(IAgentEndpointFactory)
class _GuardedEndpointFactory:
    def __init__(self, reactor: Any, tls_policy: Any, policy: AddressPolicy, timeout: float,
                 bind_address: tuple[str, int] | None):
        self.reactor = reactor
        self.tls_policy = tls_policy
        self.policy = policy
        self.timeout = timeout
        self.bind_address = bind_address

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii").rpartition("@")[2].strip("[]")
        return _GuardedEndpoint(self, uri.scheme, host, uri.port)


@implementer(IStreamClientEndpoint)
class _GuardedEndpoint:
    """Resolve, check every address, connect to the checked one (TLS with the host's name)."""

    def __init__(self, factory: _GuardedEndpointFactory, scheme: bytes, host: str, port: int):
        self.factory = factory
        self.scheme = scheme
        self.host = host
        self.port = port

    def connect(self, protocol_factory: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self._connect(protocol_factory))

    async def _connect(self, protocol_factory: Any) -> Any:
        f = self.factory
        receiver = _Addresses()
        # Unwrapped by the address guard middleware: resource downloads have their own policy.
        resolver = getattr(f.reactor.nameResolver, "unguarded", f.reactor.nameResolver)
        resolver.resolveHostName(receiver, self.host, self.port)
        addresses = await receiver.done
        if not addresses:
            raise twisted_error.DNSLookupError(f"no address for {self.host}")
        for address in addresses:
            if refusal := f.policy.refusal(address):
                where = refusal if self.host == address else f"{self.host} resolves to {refusal}"
                raise BlockedAddressError(f"refused to connect: {where} (see RESOURCE_ALLOW_PRIVATE)")
        target = addresses[0]
        kind = TCP6ClientEndpoint if ":" in target else TCP4ClientEndpoint
        endpoint: Any = kind(f.reactor, target, self.port, timeout=f.timeout, bindAddress=f.bind_address)
        if self.scheme == b"https":
            endpoint = wrapClientTLS(f.tls_policy.creatorForNetloc(self.host.encode("idna"), self.port), endpoint)
        protocol = await endpoint.connect(protocol_factory)
        _read_in_large_pieces(protocol)
        return protocol


def _read_in_large_pieces(protocol: Any) -> None:
    """Let the socket under ``protocol`` read up to READ_SIZE at a time (Twisted: 64 KiB).

    Each read costs a trip through the reactor, the HTTP parser and the body reader;
    fewer, larger reads leave more of the CPU to MD5 (see bench/resource_md5).
    """
    transport = getattr(protocol, "transport", None)
    for _ in range(3):  # TLS wraps the TCP transport
        if transport is None:
            return
        if isinstance(getattr(transport, "bufferSize", None), int) and hasattr(transport, "socket"):
            transport.bufferSize = READ_SIZE
            return
        transport = getattr(transport, "transport", None)
