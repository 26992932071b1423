"""Reading a body chunk by chunk: count, MD5, first bytes; limits and timeouts."""
from __future__ import annotations

import hashlib
import zlib

import pytest
from scrapy.exceptions import DownloadFailedError, DownloadTimeoutError, ResponseDataLossError
from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss, _DataLoss

from ckancrawl.resources.magic import SNIFF_BYTES
from ckancrawl.resources.streaming import BodyReader, BodyResult, HashThread, HeadCapture
from tests.resource_server.content import Content
from tests.resource_server.server import gzip_bomb

CHUNK = 64 * 1024


class FakeTransport:
    stopped = False
    paused = False
    pauses = 0

    def stopProducing(self) -> None:
        self.stopped = True

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False


class FakeHashThread(HashThread):
    """A HashThread whose worker runs only when told (``run_one``), in the test's thread."""

    made: list["FakeHashThread"] = []

    def __init__(self, md5) -> None:  # no thread started
        self.md5, self.queued, self.hashed, self.wake_below = md5, 0, 0, None
        self.on_progress = lambda: None
        self.pieces: list[bytes] = []
        self.done = None
        self.cancelled = False
        FakeHashThread.made.append(self)

    def put(self, piece: bytes) -> None:
        self.queued += len(piece)
        self.pieces.append(piece)

    def finish(self, on_done) -> None:
        self.done = on_done

    def cancel(self) -> None:
        self.cancelled = True

    def run_one(self) -> None:
        piece = self.pieces.pop(0)
        if not self.cancelled:
            self.md5.update(piece)
        self.hashed += len(piece)
        if self.wake_below is not None and self.behind < self.wake_below:
            self.wake_below = None
            self.on_progress()
        if not self.pieces and self.done and not self.cancelled:
            self.done()


class Outcome:
    def __init__(self, finished: Deferred) -> None:
        self.value = None
        self.failure = None
        finished.addCallbacks(lambda v: setattr(self, "value", v), lambda f: setattr(self, "failure", f))


def reader(result: BodyResult | None = None, **options):
    clock = Clock()
    finished: Deferred = Deferred()
    settings = {"hash_body": True, "max_bytes": 10 * 2**20, "read_limit": None, "max_seconds": 60.0,
                "idle_timeout": 5.0, **options}
    body = BodyReader(finished, result or BodyResult(), clock=clock, monotonic=clock.seconds, **settings)
    transport = FakeTransport()
    body.makeConnection(transport)
    return body, transport, clock, Outcome(finished)


def test_a_whole_body_is_counted_hashed_and_its_start_kept():
    content = Content(3 * 2**20 + 5, seed=7, prefix=b"%PDF-1.7\n")
    body, transport, _, outcome = reader()
    for chunk in content.chunks(chunk_size=CHUNK):
        body.dataReceived(chunk)
    body.connectionLost(Failure(ResponseDone()))
    result = outcome.value
    assert result.complete and result.stopped is None
    assert result.received == content.size
    assert result.md5 == content.md5() == hashlib.md5(content.read(0, content.size)).hexdigest()
    assert result.head == content.read(0, SNIFF_BYTES)
    assert not transport.stopped


def test_reading_stops_past_max_bytes_without_hashing_more():
    body, transport, _, outcome = reader(max_bytes=5 * CHUNK + 10)
    for _ in range(20):
        body.dataReceived(b"x" * CHUNK)
    result = outcome.value
    assert result.stopped == f"too large: more than {5 * CHUNK + 10} bytes (RESOURCE_MAX_BYTES)"
    assert result.received == 5 * CHUNK and result.md5 is None and not result.complete
    assert transport.stopped


def test_a_read_limit_stops_quietly_with_its_reason():
    body, transport, _, outcome = reader(hash_body=False, read_limit=1000, stopped_reason="too large: announced")
    body.dataReceived(b"a" * 600)
    body.dataReceived(b"b" * 600)
    assert outcome.value.received == 1000
    assert outcome.value.head == b"a" * 600 + b"b" * 400
    assert outcome.value.stopped == "too large: announced"
    assert transport.stopped


def test_silence_longer_than_the_idle_timeout_fails_the_download():
    body, transport, clock, outcome = reader(idle_timeout=2.0)
    body.dataReceived(b"x" * 100)
    clock.advance(1.5)
    body.dataReceived(b"x" * 100)
    clock.advance(1.5)
    assert outcome.failure is None
    clock.advance(1.0)
    assert outcome.failure.check(DownloadTimeoutError)
    assert "no data for 2 s after 200 bytes" in str(outcome.failure.value)
    assert transport.stopped


def test_a_slow_drip_stops_at_max_seconds_with_a_timeout_reason():
    body, transport, clock, outcome = reader(max_seconds=3.0, result=BodyResult(content_length=5000))
    for _ in range(8):
        body.dataReceived(b"x" * 10)
        clock.advance(0.5)
    assert outcome.value.stopped.startswith("timeout: the body took longer than 3 s (RESOURCE_MAX_SECONDS); ")
    assert outcome.value.stopped.endswith(f"{outcome.value.received} of 5000 bytes had arrived")
    assert outcome.value.received == 80  # the watchdog looks every 0.75 s here; later bytes are ignored
    assert outcome.value.md5 is None and transport.stopped


def test_a_body_shorter_than_its_content_length_is_data_loss():
    body, _, _, outcome = reader(result=BodyResult(content_length=9000))
    body.dataReceived(b"x" * 1000)
    body.connectionLost(Failure(ResponseFailed([Failure(twisted_error.ConnectionDone()), Failure(_DataLoss())])))
    assert outcome.failure.check(ResponseDataLossError)
    assert str(outcome.failure.value) == "the body ended after 1000 of 9000 announced bytes"


def test_a_broken_connection_is_a_download_failure():
    body, _, _, outcome = reader()
    body.dataReceived(b"x")
    body.connectionLost(Failure(ResponseFailed([Failure(twisted_error.ConnectionLost())])))
    assert outcome.failure.check(DownloadFailedError)


def test_a_close_delimited_body_is_complete():
    body, _, _, outcome = reader()
    body.dataReceived(b"abc")
    body.connectionLost(Failure(PotentialDataLoss()))
    assert outcome.value.complete and outcome.value.close_delimited
    assert outcome.value.md5 == hashlib.md5(b"abc").hexdigest()


def test_a_gzip_bomb_inflates_to_the_sniff_window_only():
    bomb = gzip_bomb(2**26)
    capture = HeadCapture("gzip")
    for start in range(0, len(bomb), CHUNK):
        capture.feed(bomb[start:start + CHUNK])
    assert capture.done and capture.size == SNIFF_BYTES and capture.note is None
    assert capture.value == bytes(SNIFF_BYTES)


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib-wrapped", "raw"])
def test_deflate_is_decoded_either_way(wbits):
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    capture = HeadCapture("deflate")
    capture.feed(packer.compress(b"<?xml version='1.0'?><rss>") + packer.flush())
    assert capture.value == b"<?xml version='1.0'?><rss>"


def test_an_encoding_that_is_not_decoded_leaves_no_head_and_says_why():
    capture = HeadCapture("br")
    capture.feed(b"\x8b\x02\x80")
    assert capture.value == b"" and capture.note == "the br content coding is not decoded for sniffing"


def test_a_corrupt_gzip_body_says_it_could_not_be_decoded():
    capture = HeadCapture("gzip")
    capture.feed(b"this is not gzip at all")
    assert capture.note.startswith("the gzip content could not be decoded")


def test_hashing_in_a_thread_keeps_order_and_pauses_the_socket_while_it_is_behind():
    FakeHashThread.made.clear()
    content = Content(6 * 2**20 + 123, seed=3)
    body, transport, _, outcome = reader(hash_thread=FakeHashThread)
    pieces = list(content.chunks(chunk_size=2**19))  # half a batch each
    body.dataReceived(pieces[0])
    assert FakeHashThread.made == []  # not a batch yet
    body.dataReceived(pieces[1])
    [thread] = FakeHashThread.made
    assert thread.behind == 2**20 and not transport.paused
    body.dataReceived(pieces[2])
    body.dataReceived(pieces[3])
    assert thread.behind == 2 * 2**20 and transport.paused  # 2 MiB behind: stop reading
    thread.run_one()
    assert thread.behind == 2**20 and transport.paused
    thread.run_one()
    assert thread.behind == 0 and not transport.paused  # caught up: read again
    for piece in pieces[4:]:
        body.dataReceived(piece)
    body.connectionLost(Failure(ResponseDone()))
    assert outcome.value is None  # still hashing
    while thread.pieces:
        thread.run_one()
    assert outcome.value.complete and outcome.value.md5 == content.md5()
    assert transport.pauses == 2  # it fell behind again while the rest came in


def test_a_small_body_is_hashed_inline_even_with_a_thread_at_hand():
    FakeHashThread.made.clear()
    body, _, _, outcome = reader(hash_thread=FakeHashThread)
    body.dataReceived(b"small")
    body.connectionLost(Failure(ResponseDone()))
    assert FakeHashThread.made == [] and outcome.value.md5 == hashlib.md5(b"small").hexdigest()


def test_a_stop_while_the_thread_hashes_reports_no_digest():
    FakeHashThread.made.clear()
    body, transport, _, outcome = reader(hash_thread=FakeHashThread, max_bytes=3 * 2**20)
    for _ in range(4):
        body.dataReceived(b"x" * 2**20)
    assert outcome.value.stopped.startswith("too large") and outcome.value.md5 is None
    [thread] = FakeHashThread.made
    assert thread.cancelled and transport.stopped


def test_the_real_hash_thread_hashes_in_order():
    import hashlib as _hashlib
    from threading import Event

    done = Event()
    thread = HashThread(_hashlib.md5(), lambda call: call())
    pieces = [bytes([n]) * 100_000 for n in range(50)]
    for piece in pieces:
        thread.put(piece)
    thread.finish(done.set)
    assert done.wait(10)
    assert thread.md5.hexdigest() == _hashlib.md5(b"".join(pieces)).hexdigest()
