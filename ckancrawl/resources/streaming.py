"""Read a resource's body as it arrives: count it, hash it, keep its first bytes, keep nothing else.

Scrapy's own HTTP handler collects the whole body in memory (``_ResponseReader`` writes
every chunk to a BytesIO) before a Response exists, so a 2 GB file costs 2 GB of RAM,
and ``bytes_received`` handlers cannot stop that. :class:`BodyReader` is the Twisted
protocol the resource download handler gives the body to instead. Per piece read from
the socket (the handler has Twisted read up to 1 MiB at a time instead of 64 KiB) it:

- stops reading, without hashing the piece, when the body goes past ``max_bytes``;
- feeds MD5 (``hashlib``): once the body passes 1 MiB, in a thread of its own
  (:class:`HashThread`), else inline;
- keeps the first :data:`~ckancrawl.resources.magic.SNIFF_BYTES` of the content for
  format sniffing. When the server sent a ``Content-Encoding`` (gzip, deflate), those
  first bytes are inflated with ``max_length``, so a gzip bomb inflates to at most
  64 KiB here; the rest of the body is never inflated.

So memory per download is bounded and small: the sniff buffer, zlib's window, one read
and at most HASH_HIGH_WATER (2 MiB) waiting for the hashing thread, past which the
socket is paused until the thread catches up. A 2 GiB download peaks at about 85 MB of
RSS for the whole crawl process (bench/resource_md5).

Why a thread, with numbers (bench/resource_md5, this project's 2-core machine, 2 GiB on
loopback): MD5 costs about 1.3 ms per MiB. Hashed inline, that is 1.3 ms of the event
loop per 1 MiB read, about 80 % of the loop's time at full speed, taken from everything
else the crawl does (the metadata harvest parses its JSON on the same loop). In a thread,
hashlib releases the GIL while it hashes, so the loop only receives and parses (about
0.5 CPU-s per 2 GiB) and the hashing uses another core when there is one. The first
threaded version, one thread-pool job per piece with a reply to the reactor each time,
cost 20-30 % more CPU than inline (517-562 MB per CPU second against 630-654); a
thread per body that replies only when asked (to resume a paused socket, and at the
end) costs 3-7 % more (610-658 against 634-679), and the crawl reached 0.82-0.88 of
md5sum's throughput with the machine half busy with other work. Bodies under 1 MiB are
hashed inline: a thread is not worth it for them.

The MD5 and the size are of the bytes *as served*: after the transfer coding
(chunked) is removed, before any content coding. The crawler asks for
``Accept-Encoding: identity``, so a well-behaved server sends the file itself and the MD5
is that of the file; a server that compresses anyway gets the MD5 of what it sent, and
the facts say which encoding that was.
"""
from __future__ import annotations

import hashlib
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

from scrapy.exceptions import DownloadFailedError, DownloadTimeoutError, ResponseDataLossError
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss, _DataLoss

from ckancrawl.resources.magic import SNIFF_BYTES

#: request.meta key: a :class:`ResourceFetch` makes the request a resource download.
FETCH_META = "ckancrawl_resource_fetch"
#: request.meta key where the handler leaves the :class:`BodyResult`.
RESULT_META = "ckancrawl_resource_body"


@dataclass(frozen=True)
class ResourceFetch:
    """What the resource download handler does with a request's body."""

    #: Compute the MD5 of the whole body (of 2xx answers).
    hash: bool = True
    #: Stop reading past this many bytes; the result says "too large".
    max_bytes: int = 1024**3
    #: Stop quietly after this many bytes (probes); None reads to the end.
    read_limit: int | None = None
    #: Stop when the body takes longer than this (seconds from the status line).
    max_seconds: float = 1800.0


@dataclass
class BodyResult:
    """What the handler learned from one answer's body (request.meta[RESULT_META])."""

    #: Bytes of the body read, as served.
    received: int = 0
    #: MD5 (hex) of the whole body as served; None if not asked, not a 2xx or incomplete.
    md5: str | None = None
    #: The whole body was read (its end was seen).
    complete: bool = False
    #: Why reading stopped early: "<kind>: <detail>" (``too large``, ``timeout``) or
    #: ``read limit: ...`` for probes.
    stopped: str | None = None
    #: The start of the content (inflated when Content-Encoding is gzip/deflate).
    head: bytes = b""
    #: Why ``head`` is empty although bytes arrived (an encoding that is not decoded).
    head_note: str | None = None
    #: Content-Encoding and Content-Length as the server sent them.
    content_encoding: str | None = None
    content_length: int | None = None
    #: Content-Type, Content-Range as sent (HttpCompressionMiddleware may rewrite headers).
    content_type: str | None = None
    content_range: str | None = None
    #: The body's end was the connection's close (no Content-Length, not chunked).
    close_delimited: bool = False
    #: The address the answer came from.
    peer: str | None = None
    #: Seconds from the status line to the end of the body.
    seconds: float = 0.0
    #: Pieces the body arrived in (socket reads).
    reads: int = 0


class HeadCapture:
    """Keeps the first ``limit`` bytes of the content, inflating at most that much."""

    def __init__(self, content_encoding: str | None, limit: int = SNIFF_BYTES):
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.done = limit <= 0
        self.note: str | None = None
        self._encoding = (content_encoding or "").strip().lower()
        self._inflater: Any = None
        self._pending_deflate = False
        if self._encoding in ("", "identity"):
            pass
        elif self._encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self._encoding == "deflate":
            self._pending_deflate = True  # zlib-wrapped or raw: told by the first bytes
        else:
            self.done = True
            self.note = f"the {self._encoding} content coding is not decoded for sniffing"

    def feed(self, data: bytes) -> None:
        if self.done or not data:
            return
        room = self.limit - self.size
        if self._pending_deflate:
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            self._pending_deflate = False
        if self._inflater is None:
            piece = data[:room]
        else:
            try:
                # max_length bounds the output: a bomb cannot inflate past the room left.
                piece = self._inflater.decompress(self._inflater.unconsumed_tail + data, room)
            except zlib.error as error:
                self.done = True
                self.note = f"the {self._encoding} content could not be decoded ({error})"
                self._inflater = None
                return
        self.parts.append(piece)
        self.size += len(piece)
        if self.size >= self.limit:
            self.done = True
            self._inflater = None

    @property
    def value(self) -> bytes:
        return b"".join(self.parts)


#: Bytes handed to the hashing thread at once (smaller reads are joined first).
HASH_BATCH = 1024 * 1024
#: Bytes waiting for the hashing thread past which the socket stops being read.
HASH_HIGH_WATER = 2 * 1024 * 1024


class HashThread:
    """MD5 of one body in a thread of its own: pieces in order, no reply per piece.

    The reactor thread ``put()``s pieces and reads ``behind`` (bytes not hashed yet); the
    worker calls back into the reactor (``call_in_reactor``) only when asked to: once
    ``behind`` drops under ``wake_below`` (then ``on_progress``), and at the end
    (``on_done``). hashlib releases the GIL while it hashes a piece, so the reactor thread
    goes on reading meanwhile.
    """

    def __init__(self, md5: Any, call_in_reactor: Callable[[Callable[[], None]], None]):
        self.md5 = md5
        self.queued = 0  # written by the reactor thread only
        self.hashed = 0  # written by the worker only
        self.wake_below: int | None = None
        self.on_progress: Callable[[], None] = lambda: None
        self._on_done: Callable[[], None] | None = None
        self._cancelled = False
        self._call = call_in_reactor
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="ckancrawl-md5", daemon=True).start()

    @property
    def behind(self) -> int:
        return self.queued - self.hashed

    def put(self, piece: bytes) -> None:
        self.queued += len(piece)
        self._queue.put(piece)

    def finish(self, on_done: Callable[[], None]) -> None:
        self._on_done = on_done
        self._queue.put(None)

    def cancel(self) -> None:
        self._cancelled = True
        self._queue.put(None)

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if not self._cancelled:
                self.md5.update(piece)
            self.hashed += len(piece)
            wake_below = self.wake_below
            if wake_below is not None and self.queued - self.hashed < wake_below:
                self.wake_below = None
                self._call(self.on_progress)
        if not self._cancelled and self._on_done is not None:
            self._call(self._on_done)


class BodyReader(Protocol):
    """Twisted body protocol: streams the body into a :class:`BodyResult`.

    ``finished`` fires with the result, or fails with a Scrapy download exception
    (ResponseDataLossError when the body ends before its announced length,
    DownloadTimeoutError when no byte came for ``idle_timeout`` seconds).

    With ``hash_thread`` (a factory of :class:`HashThread`), a body longer than
    HASH_BATCH is hashed in a thread of its own, the socket paused while HASH_HIGH_WATER
    bytes wait for it; shorter bodies, and every body without it, are hashed inline.
    """

    def __init__(
        self,
        finished: Deferred[BodyResult],
        result: BodyResult,
        *,
        hash_body: bool,
        max_bytes: int,
        read_limit: int | None,
        max_seconds: float,
        idle_timeout: float,
        clock: Any,
        stopped_reason: str | None = None,
        hash_thread: Callable[[Any], HashThread] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.finished = finished
        self.result = result
        self._md5 = hashlib.md5() if hash_body else None
        self._max_bytes = max_bytes
        self._read_limit = read_limit
        self._limit_reason = stopped_reason
        self._max_seconds = max_seconds
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._hash_thread_factory = hash_thread
        self._thread: HashThread | None = None
        self._now = monotonic
        self._started = monotonic()
        self._last_data = self._started
        self._head = HeadCapture(result.content_encoding)
        self._over = False
        self._watchdog: task.LoopingCall | None = None
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0
        self._paused = False
        self._body_ended = False

    def connectionMade(self) -> None:
        interval = max(0.05, min(1.0, self._idle_timeout / 4, self._max_seconds / 4))
        self._watchdog = task.LoopingCall(self._check_time)
        self._watchdog.clock = self._clock
        self._watchdog.start(interval, now=False)

    def dataReceived(self, data: bytes) -> None:
        if self._over:
            return  # buffered data can still arrive after stopProducing()
        self._last_data = self._now()
        self.result.reads += 1
        total = self.result.received + len(data)
        if total > self._max_bytes:
            self._head.feed(data[: max(0, self._max_bytes - self.result.received)])
            self._stop(f"too large: more than {self._max_bytes} bytes (RESOURCE_MAX_BYTES)")
            return
        if self._read_limit is not None and total >= self._read_limit:
            data = data[: self._read_limit - self.result.received]
            self._take(data)
            self._stop(self._limit_reason or f"read limit: stopped after {self._read_limit} bytes")
            return
        self._take(data)

    def _take(self, data: bytes) -> None:
        self.result.received += len(data)
        if not self._head.done:
            self._head.feed(data)
        if self._md5 is None:
            return
        if self._hash_thread_factory is None:
            self._md5.update(data)
            return
        self._waiting.append(data)
        self._waiting_bytes += len(data)
        if self._waiting_bytes < HASH_BATCH:
            return
        if self._thread is None:
            self._thread = self._hash_thread_factory(self._md5)
            self._thread.on_progress = self._caught_up
        self._thread.put(self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting))
        self._waiting, self._waiting_bytes = [], 0
        if self._thread.behind >= HASH_HIGH_WATER and not self._paused:
            self._paused = True
            self._thread.wake_below = HASH_BATCH
            assert self.transport is not None
            self.transport.pauseProducing()
            if self._thread.behind < HASH_BATCH:  # it caught up before it was asked to say so
                self._caught_up()

    def _caught_up(self) -> None:
        if self._paused and not self._over:
            self._paused = False
            self._last_data = self._now()
            assert self.transport is not None
            self.transport.resumeProducing()

    def _complete(self) -> None:
        """The whole body arrived: hash what is left, then report."""
        md5 = self._md5
        if self._thread is not None:
            for piece in self._waiting:
                self._thread.put(piece)
            self._waiting = []
            self._thread.finish(self._report_complete)
            return
        if md5 is not None:
            for piece in self._waiting:
                md5.update(piece)
        self._report_complete()

    def _report_complete(self) -> None:
        if self._over:
            return
        md5 = self._md5
        self.result.complete = True
        self._end()
        self.result.md5 = md5.hexdigest() if md5 is not None else None
        self.finished.callback(self.result)

    # -- time limits and the end -------------------------------------------------------------

    def _check_time(self) -> None:
        if self._over:
            return
        now = self._now()
        if now - self._started > self._max_seconds:
            announced = f" of {self.result.content_length}" if self.result.content_length is not None else ""
            self._stop(
                f"timeout: the body took longer than {self._max_seconds:g} s (RESOURCE_MAX_SECONDS); "
                f"{self.result.received}{announced} bytes had arrived"
            )
        elif now - self._last_data > self._idle_timeout and not self._paused and not self._body_ended:
            self._fail(DownloadTimeoutError(
                f"no data for {self._idle_timeout:g} s after {self.result.received} bytes of the body"
            ))

    def _stop(self, reason: str) -> None:
        """Stop reading (the connection is closed, not reused) and report what was read."""
        self.result.stopped = reason
        self._end()
        assert self.transport is not None
        self.transport.stopProducing()
        self.finished.callback(self.result)

    def _fail(self, error: Exception) -> None:
        self._end()
        if self.transport is not None and not self._body_ended:
            self.transport.stopProducing()
        self.finished.errback(Failure(error))

    def _end(self) -> None:
        self._over = True
        self.result.seconds = self._now() - self._started
        self.result.head = self._head.value
        self.result.head_note = self._head.note
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        if self._thread is not None and not self.result.complete:
            self._thread.cancel()
        self._md5 = None
        self._waiting = []

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._over:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._body_ended = True
            self.result.close_delimited = bool(reason.check(PotentialDataLoss))
            self._complete()
            return
        self._end()
        if reason.check(ResponseFailed) and any(r.check(_DataLoss) for r in reason.value.reasons):
            announced = self.result.content_length
            detail = (
                f"the body ended after {self.result.received} of {announced} announced bytes"
                if announced is not None
                else f"the body ended after {self.result.received} bytes without its proper end"
            )
            error: Exception = ResponseDataLossError(detail)
        else:
            error = DownloadFailedError(f"the body broke off after {self.result.received} bytes ({reason.value})")
        error.__cause__ = reason.value
        self.finished.errback(Failure(error))
