"""A stable fingerprint of JSON-like data: equal data, equal hash, whatever the key order.

``content_hash(obj)`` is ``"sha256:<hex>"`` of the canonical JSON of ``obj``: keys
sorted, no spaces, non-ASCII kept as UTF-8. A portal that sends the same dataset with
its keys in another order has not changed it.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()
