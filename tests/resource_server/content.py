"""Deterministic file contents of any size, generated on the fly and never stored.

A :class:`Content` is ``prefix`` followed by pseudo-random bytes up to ``size``. The
bytes come from one 1 MiB block drawn from ``random.Random(seed)``; the first 8 bytes of
every block-sized stretch are replaced by its index, so no two MiB of a file are equal
and a reordering or a skipped chunk changes the MD5. Serving a GiB costs a memcpy per
MiB, so the server is never the bottleneck of a download benchmark.

Tests compare a crawl's MD5 with :meth:`Content.md5`: hashlib over the same generator.
"""
from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

BLOCK = 1024 * 1024


@lru_cache(maxsize=8)
def _block(seed: int) -> bytes:
    return random.Random(seed).randbytes(BLOCK)


#: Bytes to printable text (letters, digits, commas, newlines) for ``text=True`` contents.
_TEXT = bytes.maketrans(bytes(range(256)), (b"abcdefghijklmnopqrstuvwxyz0123456789,,,,\n" * 7)[:256])


@dataclass(frozen=True)
class Content:
    size: int
    seed: int = 0
    prefix: bytes = b""
    #: Printable text instead of arbitrary bytes (after the prefix).
    text: bool = False

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must be >= 0")

    def _stretch(self, index: int) -> bytes:
        """The index-th block-sized stretch of the pseudo-random part."""
        data = bytearray(_block(self.seed))
        if self.text:
            data = bytearray(data.translate(_TEXT))
            data[:8] = b"%08x" % (index % 2**32)
        else:
            data[:8] = struct.pack("<Q", index)
        return bytes(data)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``offset`` to ``offset + length`` (clipped to the size)."""
        end = min(self.size, offset + length)
        return b"".join(self.chunks(offset, end, chunk_size=max(1, end - offset)))

    def chunks(self, start: int = 0, end: int | None = None, chunk_size: int = BLOCK) -> Iterator[bytes]:
        """The bytes from ``start`` to ``end`` (exclusive), in pieces of at most chunk_size."""
        end = self.size if end is None else min(end, self.size)
        position = start
        while position < end:
            if position < len(self.prefix):
                piece = self.prefix[position:min(end, len(self.prefix), position + chunk_size)]
            else:
                index, within = divmod(position, BLOCK)
                stop = min(BLOCK, within + (end - position), within + chunk_size)
                piece = self._stretch(index)[within:stop]
            position += len(piece)
            yield piece

    def md5(self) -> str:
        digest = hashlib.md5()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()
