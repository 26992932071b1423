"""The documents of one core: pending and committed, optionally persisted to a file.

As in Solr, an add or a delete is invisible to searches until a commit. A document
replaces the one with the same unique key. With a data path, each committed operation
is appended to a JSON-lines log that is replayed (and compacted) at start-up, so a
stand-in that is restarted keeps its index, like a real Solr core does.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Any

from .document import Document
from .query import Query, parse_query
from .schema import Schema
from .search import Params, select


class Index:
    def __init__(self, schema: Schema, data_path: str | None = None):
        self.schema = schema
        self.data_path = data_path
        self._lock = threading.RLock()
        self._docs: dict[str, Document] = {}
        self._pending: list[tuple[str, Any]] = []
        self._seq = itertools.count(1)
        self._version = itertools.count(1)
        self._commit_timer: threading.Timer | None = None
        if data_path and os.path.exists(data_path):
            self._replay(data_path)

    # --- updates -------------------------------------------------------------------------

    def add(self, sources: list[dict[str, Any]]) -> None:
        """Queue documents for the next commit; all are checked first (SolrError if one is bad)."""
        with self._lock:
            docs = [Document(self.schema, source, next(self._seq), next(self._version)) for source in sources]
            self._pending.extend(("add", doc) for doc in docs)

    def delete_by_query(self, text: str) -> None:
        # Solr parses delete queries with the lucene parser and OR as the default operator.
        query = parse_query(self.schema, text, {}, "lucene")
        with self._lock:
            self._pending.append(("delete_query", (text, query)))

    def delete_by_id(self, keys: list[str]) -> None:
        with self._lock:
            self._pending.append(("delete_id", [str(k) for k in keys]))

    def rollback(self) -> None:
        with self._lock:
            self._pending.clear()

    def commit(self) -> None:
        """Make queued operations visible, in the order they arrived."""
        with self._lock:
            if self._commit_timer is not None:
                self._commit_timer.cancel()
                self._commit_timer = None
            if not self._pending:
                return
            pending, self._pending = self._pending, []
            log_lines = []
            for kind, payload in pending:
                if kind == "add":
                    self._docs[payload.key] = payload
                    log_lines.append({"add": payload.source})
                elif kind == "delete_id":
                    for key in payload:
                        self._docs.pop(key, None)
                    log_lines.append({"delete_id": payload})
                else:
                    text, query = payload
                    self._delete_matching(query)
                    log_lines.append({"delete_query": text})
            self._append_log(log_lines)

    def commit_within(self, milliseconds: int) -> None:
        with self._lock:
            if self._commit_timer is None:
                self._commit_timer = threading.Timer(milliseconds / 1000, self.commit)
                self._commit_timer.daemon = True
                self._commit_timer.start()

    def _delete_matching(self, query: Query | None) -> None:
        if query is None:
            return
        for key in [key for key, doc in self._docs.items() if query.score(doc) is not None]:
            del self._docs[key]

    # --- reads ---------------------------------------------------------------------------

    def search(self, params: Params) -> dict[str, Any]:
        with self._lock:
            docs = sorted(self._docs.values(), key=lambda doc: doc.seq)
            return select(self.schema, docs, params)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"committed": len(self._docs), "pending": len(self._pending)}

    # --- persistence ---------------------------------------------------------------------

    def _append_log(self, lines: list[dict[str, Any]]) -> None:
        if not self.data_path:
            return
        with open(self.data_path, "a", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, default=str) + "\n")
            handle.flush()

    def _replay(self, path: str) -> None:
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except ValueError:
                    break  # a line cut short by a crash: everything before it counts
                if "add" in entry:
                    doc = Document(self.schema, entry["add"], next(self._seq), next(self._version))
                    self._docs[doc.key] = doc
                elif "delete_id" in entry:
                    for key in entry["delete_id"]:
                        self._docs.pop(key, None)
                elif "delete_query" in entry:
                    self._delete_matching(parse_query(self.schema, entry["delete_query"], {}, "lucene"))
        compacted = path + ".tmp"
        with open(compacted, "w", encoding="utf-8") as handle:
            for doc in sorted(self._docs.values(), key=lambda d: d.seq):
                handle.write(json.dumps({"add": doc.source}, default=str) + "\n")
        os.replace(compacted, path)
