"""ETags and the values they validated, kept between runs (SQLite, one file).

Settings:

- ``GITHUB_CACHE_DIR``: the directory of ``etags.sqlite``; default ``.services/github-cache``
  beside ``scrapy.cfg`` (the project root), else under the current directory. Also read
  from the environment variable of the same name.

An entry is ``key -> (etag, value, checked_at)``: the ETag GitHub sent, the value the
spider derived from that answer (a count, not the whole body), and when it was last
confirmed. Reads come from memory (the file is loaded once); writes are collected and
written in one transaction by ``flush()``, which the spider calls in a thread after each
batch so that a crash loses at most the batch in flight.

No token is stored: conditional requests stay free because the spider pins each
repository to the same token (see ``tokens.TokenPool.choose``).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "etags.sqlite"


@dataclass(frozen=True)
class Entry:
    etag: str
    value: Any
    checked_at: float


def default_cache_dir(settings: Any = None) -> Path:
    configured = (settings.get("GITHUB_CACHE_DIR") if settings is not None else None) or os.environ.get(
        "GITHUB_CACHE_DIR"
    )
    if configured:
        return Path(configured)
    from scrapy.utils.conf import closest_scrapy_cfg

    cfg = closest_scrapy_cfg()
    root = Path(cfg).parent if cfg else Path.cwd()
    return root / ".services" / "github-cache"


class ETagStore:
    def __init__(self, directory: Path | str) -> None:
        self.path = Path(directory) / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS etags (key TEXT PRIMARY KEY, etag TEXT NOT NULL, "
            "value TEXT NOT NULL, checked_at REAL NOT NULL)"
        )
        self._entries = {
            key: Entry(etag, json.loads(value), checked_at)
            for key, etag, value, checked_at in self._db.execute("SELECT key, etag, value, checked_at FROM etags")
        }
        self._pending: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: str, etag: str, value: Any) -> None:
        entry = Entry(etag, value, time.time())
        with self._lock:
            self._entries[key] = entry
            self._pending[key] = entry

    def touch(self, key: str) -> None:
        """Record that the entry was confirmed (304) now."""
        entry = self._entries.get(key)
        if entry is not None:
            self.put(key, entry.etag, entry.value)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._pending.pop(key, None)
            self._db.execute("DELETE FROM etags WHERE key = ?", (key,))

    def flush(self) -> int:
        """Write what changed since the last flush; blocking, so call it in a thread."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if pending:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.executemany(
                        "INSERT OR REPLACE INTO etags (key, etag, value, checked_at) VALUES (?, ?, ?, ?)",
                        [(k, e.etag, json.dumps(e.value), e.checked_at) for k, e in pending.items()],
                    )
        return len(pending)

    def close(self) -> None:
        self.flush()
        self._db.close()
