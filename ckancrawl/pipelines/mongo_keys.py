"""Reversible encoding of dictionary keys that MongoDB or its tools reject.

MongoDB refuses NUL in a key, and a ``.`` anywhere or a ``$`` at the start of a key
breaks queries, updates and most tools. The codec percent-encodes exactly these:

- ``%`` (the escape character itself) -> ``%25``
- ``.`` anywhere -> ``%2E``
- ``$`` at the start -> ``%24``
- NUL -> ``%00``
- the empty key -> ``%`` (a lone ``%`` is never produced for any other key, since every
  ``%`` of a non-empty key is followed by two hex digits)

Every other key, including non-ASCII and very long keys, is left as it is. The mapping is
injective (``decode_key(encode_key(k)) == k`` for every string), so two different keys
never merge, and ``decode_key`` rejects any string that ``encode_key`` cannot produce.

``MongoKeysPipeline`` applies ``encode_keys`` to every field of an item: every dict,
including dicts inside lists, at any depth. It reads no settings. It must run before
``MongoPipeline`` and run once only: encoding is not idempotent (``%`` -> ``%25``).
"""
from __future__ import annotations

import re
from typing import Any

from itemadapter import ItemAdapter

_ESCAPE = "%"
_EMPTY_KEY = "%"
_NEEDS_ENCODING = re.compile(r"[.%\x00]")
_ESCAPES = {"%25": "%", "%2E": ".", "%24": "$", "%00": "\x00"}
_ESCAPE_SEQUENCE = re.compile(r"%(?:25|2E|24|00)")


def encode_key(key: str) -> str:
    """Return ``key`` in a form MongoDB accepts; ``decode_key`` gives it back."""
    if not key:
        return _EMPTY_KEY
    if key[0] != "$" and not _NEEDS_ENCODING.search(key):
        return key
    encoded = key.replace("%", "%25").replace(".", "%2E").replace("\x00", "%00")
    if encoded[0] == "$":
        encoded = "%24" + encoded[1:]
    return encoded


def decode_key(encoded: str) -> str:
    """Invert ``encode_key``. Raise ValueError for a string it cannot have produced."""
    if encoded == _EMPTY_KEY:
        return ""
    if _ESCAPE not in encoded:
        if not encoded or encoded[0] == "$" or "." in encoded or "\x00" in encoded:
            raise ValueError(f"not an encoded key: {encoded!r}")
        return encoded
    key = _ESCAPE_SEQUENCE.sub(lambda match: _ESCAPES[match.group()], encoded)
    # Non-canonical input ("%41", "a%24", a bare "." ...) would decode to a key whose
    # encoding differs; rejecting it keeps decode_key the exact inverse of encode_key.
    if encode_key(key) != encoded:
        raise ValueError(f"not an encoded key: {encoded!r}")
    return key


def encode_keys(obj: Any) -> Any:
    """Return a copy of ``obj`` with ``encode_key`` applied to the keys of every dict.

    Dicts, lists and tuples are walked at any depth; other values are returned as they
    are. Non-string keys are left alone (BSON rejects them anyway, with its own error).
    """
    kind = type(obj)
    # Exact types first: harvested datasets are large trees of plain dicts and lists.
    if kind is dict:
        return {
            (_encode_str_key(k) if type(k) is str else encode_key(k) if isinstance(k, str) else k):
            (v if type(v) in _LEAVES else encode_keys(v))
            for k, v in obj.items()
        }
    if kind is list:
        return [v if type(v) in _LEAVES else encode_keys(v) for v in obj]
    if kind in _LEAVES:
        return obj
    if isinstance(obj, dict):
        return {
            (encode_key(k) if isinstance(k, str) else k): encode_keys(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [encode_keys(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(encode_keys(v) for v in obj)
    return obj


#: Values that hold no keys (exact types; subclasses take the slow path).
_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


def _encode_str_key(key: str) -> str:
    """``encode_key`` with a fast path for the usual clean key."""
    if key and key[0] != "$" and "." not in key and "%" not in key and "\x00" not in key:
        return key
    return encode_key(key)


def decode_keys(obj: Any) -> Any:
    """Invert ``encode_keys``."""
    if isinstance(obj, dict):
        return {
            (decode_key(k) if isinstance(k, str) else k): decode_keys(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [decode_keys(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(decode_keys(v) for v in obj)
    return obj


class MongoKeysPipeline:
    """Encode the keys of every dict inside an item's fields (see the module docstring).

    Settings: none. Dataclass, attrs and scrapy.Item field names are identifiers and
    stay as they are; the top-level keys of a plain dict item are encoded too.
    """

    def process_item(self, item: Any) -> Any:
        if isinstance(item, dict):
            encoded = encode_keys(item)
            item.clear()
            item.update(encoded)
            return item
        adapter = ItemAdapter(item)
        for name, value in list(adapter.items()):
            if isinstance(value, (dict, list, tuple)):
                adapter[name] = encode_keys(value)
        return item
