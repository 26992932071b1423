"""Store items in MongoDB: a history collection and a "latest" view per item class.

The item class says where its documents go (ClassVars, see ckancrawl/items.py):

- ``<mongo_collection>``: every document ever written, unique on ``mongo_key``. Each
  write is a ReplaceOne upsert on that key, so a rerun or a resumed run rewrites the
  same documents instead of adding copies.
- ``<mongo_collection>_latest``: one document per ``entity_key``, the one with the
  newest ``run_timestamp``. The replace is conditional (stored ``run_timestamp`` <= the
  new one), so replaying an older run never hides a newer one. ISO 8601 strings in one
  format (as the spiders write them) compare in time order.

An item class may name another write strategy in ``mongo_strategy`` (a dotted path
to a class; see :class:`SnapshotWrites` for the contract): the raw metadata repository
(ckancrawl/pipelines/raw_repository.py) keeps one current document per dataset with
older versions in a history collection. Every strategy goes through the same writer,
batches, retries and spill file.

Documents are buffered and written in bulk (``ordered=False``, journaled: ``j=True``)
by one writer thread, which keeps them in order and keeps pymongo off the event loop.
A batch goes out when it is full, every MONGODB_FLUSH_INTERVAL seconds and at close;
when the buffer is full, ``process_item`` waits for the writer (backpressure).

Nothing is dropped. A lost connection is retried with exponential backoff; when the
retries are used up, the batch and every later one go to a spill file (JSONL) in
MONGODB_SPILL_DIR, in order, and the writer moves them into MongoDB as soon as it
answers again. What is still in the spill file at close is reported with the command
that replays it::

    python -m ckancrawl.pipelines.mongodb replay FILE...

When MongoDB is down and the spill file cannot be written either (a full disk), the
batch is held in memory, the error says so, and the crawl stops (finish reason
``storage_unavailable``) so that no more work piles up; at close the held documents go
to MongoDB if it answers again, else to the spill file if it has room by then; only if
both still fail are they reported as lost, with their count and the advice to run the
crawl again.

Documents that MongoDB refuses (too large, invalid) go to a ``-rejected.jsonl`` file
beside it, with the reason, and are logged as errors.

Keys must be MongoDB-safe before they get here: run MongoKeysPipeline first.

Settings:

- MONGODB_URI: the server; unset (and no MONGODB_URI environment variable) disables
  the pipeline. The password is never logged.
- MONGODB_DATABASE (``"ckancrawl"``)
- MONGODB_BATCH_SIZE (100): documents per bulk write.
- MONGODB_FLUSH_INTERVAL (5.0): seconds between time-based flushes.
- MONGODB_RETRY_TIMES (5): retries of a batch after a connection error.
- MONGODB_RETRY_BACKOFF (1.0): seconds before the first retry, doubled each retry
  (at most 30 s).
- MONGODB_SERVER_SELECTION_TIMEOUT (5.0): seconds to find the server, for the ping at
  open and for every write attempt.
- MONGODB_SPILL_DIR (``"mongodb-spill"``): where unwritten documents are saved.

Stats: ``mongodb/items``, ``mongodb/documents_written``, ``mongodb/latest_written``,
``mongodb/latest_kept_newer`` (an older run did not replace a newer latest),
``mongodb/batches``, ``mongodb/retries``, ``mongodb/spilled``, ``mongodb/unspilled``
(moved from the spill file into MongoDB), ``mongodb/left_in_spill``,
``mongodb/held`` (kept in memory: neither MongoDB nor the spill file took them),
``mongodb/lost`` (held, and still nowhere to put them at close),
``mongodb/rejected``, ``mongodb/items_not_stored`` (item class without
``mongo_collection``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import bson
from bson import json_util
from itemadapter import ItemAdapter
from pymongo import ASCENDING, MongoClient, ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    InvalidDocument,
    OperationFailure,
)
from pymongo.write_concern import WriteConcern
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object
from scrapy.utils.asyncio import is_asyncio_available

from ckancrawl.shutdown import stop_crawl

logger = logging.getLogger(__name__)

RUN_FIELD = "run_timestamp"
#: The default write strategy: history upserts on mongo_key plus a conditional latest view.
SNAPSHOT = "snapshot"
LATEST_SUFFIX = "_latest"
MAX_BACKOFF = 30.0
MAX_BSON_SIZE = 16 * 1024 * 1024
DUPLICATE_KEY = 11000
# Server error codes that mean "try again" (MongoDB's retryable writes specification):
# not primary, shutting down, network, time limit.
RETRYABLE_CODES = frozenset(
    {6, 7, 89, 91, 134, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436}
)
REPLAY_COMMAND = "python -m ckancrawl.pipelines.mongodb replay"
NOT_SET_MESSAGE = (
    "MONGODB_URI is not set: items are not stored in MongoDB (feed exports still work)"
)


def redact_uri(uri: str) -> str:
    """Return ``uri`` without its password or secret query options, for logs."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        # The last "@" ends the user info even when a password holds a raw "@".
        userinfo, _, hosts = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    uri = f"{scheme}{sep}{rest}"
    return re.sub(
        r"(?i)([?&;][^=&;]*(?:password|secret|token)[^=&;]*=)[^&;]*", r"\1***", uri
    )


def _secrets_of(uri: str) -> list[str]:
    _, _, rest = uri.partition("://")
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    found = {password, unquote(password)}
    found.update(
        re.findall(r"(?i)[?&;][^=&;]*(?:password|secret|token)[^=&;]*=([^&;]+)", uri)
    )
    return sorted((s for s in found if s), key=len, reverse=True)


class MongoUnavailable(RuntimeError):
    """MongoDB cannot be used at all (unreachable, login refused, invalid URI)."""


@dataclass(frozen=True)
class Target:
    """Where the documents of one item class go, read from its ClassVars."""

    collection: str
    key: tuple[str, ...]
    entity_key: tuple[str, ...] | None
    #: How the documents are written: SNAPSHOT, or the dotted path of a strategy class.
    strategy: str = SNAPSHOT

    @classmethod
    def of(cls, item_class: type) -> Target | None:
        collection = getattr(item_class, "mongo_collection", None)
        if not collection:
            return None
        key = tuple(getattr(item_class, "mongo_key", None) or ())
        if not key:
            raise TypeError(
                f"{item_class.__qualname__} sets mongo_collection but no mongo_key: "
                "say which fields identify one document"
            )
        entity_key = tuple(getattr(item_class, "entity_key", None) or ()) or None
        strategy = str(getattr(item_class, "mongo_strategy", None) or SNAPSHOT)
        return cls(str(collection), key, entity_key, strategy)

    @property
    def latest_collection(self) -> str:
        return self.collection + LATEST_SUFFIX


@dataclass
class Pending:
    """One document waiting to be written."""

    target: Target
    document: dict[str, Any]
    #: BSON size of ``document``, once the writer has measured it.
    size: int | None = field(default=None, compare=False)

    def to_json(self, error: str | None = None) -> str:
        line = {
            "collection": self.target.collection,
            "mongo_key": list(self.target.key),
            "entity_key": list(self.target.entity_key or ()),
            "document": self.document,
        }
        if self.target.strategy != SNAPSHOT:
            line["strategy"] = self.target.strategy
        if error:
            line["error"] = error
        return json_util.dumps(line, json_options=json_util.RELAXED_JSON_OPTIONS)

    @classmethod
    def from_json(cls, line: str) -> Pending:
        data = json_util.loads(line, json_options=json_util.RELAXED_JSON_OPTIONS)
        target = Target(
            data["collection"],
            tuple(data["mongo_key"]),
            tuple(data["entity_key"]) or None,
            data.get("strategy", SNAPSHOT),
        )
        return cls(target, data["document"])


@dataclass
class Outcome:
    """What the writer did; the pipeline adds it to the crawl stats."""

    documents_written: int = 0
    latest_written: int = 0
    latest_kept_newer: int = 0
    batches: int = 0
    retries: int = 0
    spilled: int = 0
    unspilled: int = 0
    left_in_spill: int = 0
    held: int = 0
    lost: int = 0
    rejected: int = 0
    #: Counts of write strategies other than snapshots, by name (see ``count``).
    extra: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        if value:
            self.extra[name] = self.extra.get(name, 0) + value

    def add(self, other: Outcome) -> None:
        for f in fields(self):
            if f.name != "extra":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        for name, value in other.extra.items():
            self.count(name, value)

    def counts(self) -> Iterator[tuple[str, int]]:
        for f in fields(self):
            if f.name != "extra" and (value := getattr(self, f.name)):
                yield f.name, value
        yield from sorted(self.extra.items())


class _Retry(Exception):
    """Some documents of a batch should be written again (a retryable server error)."""

    def __init__(self, pending: list[Pending], reason: str, outcome: Outcome):
        super().__init__(reason)
        self.pending = pending
        self.outcome = outcome  # what the attempt did write


@dataclass
class BulkResult:
    """What one bulk write did: how many operations succeeded, what should be retried."""

    written: int
    retry: list[Pending]
    reasons: list[str]


class SnapshotWrites:
    """The default strategy: each document upserted into ``<collection>`` on its
    ``mongo_key``, and into ``<collection>_latest`` when it is the newest of its entity.

    A write strategy is a class with ``keeps_large_documents`` (True if it stores
    documents over 16 MB its own way; else they are refused) and
    ``write(writer, pendings, outcome) -> BulkResult``, which writes documents of its
    own kind through ``writer.bulk`` and ``writer.db``, raises ConnectionFailure when
    MongoDB cannot be reached, and returns what should be retried. It must be
    idempotent: a batch may be written again after a partial failure or a replay.
    """

    keeps_large_documents = False

    def write(self, writer: MongoWriter, pendings: list[Pending], outcome: Outcome) -> BulkResult:
        """Within a batch, the last document per history key and the newest per entity
        win, so an unordered bulk write never races two upserts of one key."""
        history: dict[str, dict[Any, Pending]] = {}
        latest: dict[str, dict[Any, Pending]] = {}
        for pending in pendings:
            target, doc = pending.target, pending.document
            history.setdefault(target.collection, {})[_identity(doc, target.key)] = pending
            if target.entity_key:
                newest = latest.setdefault(target.latest_collection, {})
                identity = _identity(doc, target.entity_key)
                if identity not in newest or not _older(doc, newest[identity].document):
                    newest[identity] = pending
        retry: list[Pending] = []
        reasons: list[str] = []
        for name, by_key in history.items():
            chosen = list(by_key.values())
            key = chosen[0].target.key
            ops = [ReplaceOne({f: p.document.get(f) for f in key}, p.document, upsert=True) for p in chosen]
            result = writer.bulk(name, key, ops, chosen, outcome)
            outcome.documents_written += result.written
            retry += result.retry
            reasons += result.reasons
        for name, by_entity in latest.items():
            chosen = list(by_entity.values())
            key = chosen[0].target.entity_key or ()
            ops = [_latest_op(p.document, key) for p in chosen]
            result = writer.bulk(name, key, ops, chosen, outcome, latest=True)
            outcome.latest_written += result.written
            retry += result.retry
            reasons += result.reasons
        return BulkResult(0, _unique(retry), reasons)


class MongoWriter:
    """Blocking writer. Call every method from one thread only, one call at a time."""

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        spill_path: Path,
        batch_size: int = 100,
        retry_times: int = 5,
        retry_backoff: float = 1.0,
        server_selection_timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.uri = uri
        self.database_name = database
        self.spill_path = spill_path
        self.rejected_path = spill_path.with_name(spill_path.stem + "-rejected.jsonl")
        self.batch_size = batch_size
        self.retry_times = retry_times
        self.retry_backoff = retry_backoff
        self.server_selection_timeout = server_selection_timeout
        self._sleep = sleep
        self._secrets = _secrets_of(uri)
        self._client: MongoClient | None = None
        self._db: Any = None
        self._indexed: set[tuple[str, tuple[str, ...]]] = set()
        self._strategies: dict[str, Any] = {}
        self._spilled = 0  # documents in the spill file, waiting for MongoDB
        self._next_probe = 0.0
        #: Documents neither MongoDB nor the spill file took, in order (see ``_hold``).
        self._held: list[Pending] = []
        #: Why documents are held, once they are: the pipeline stops the crawl.
        self.storage_error: str | None = None

    # -- messages --------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """Remove the URI's secrets from a message (pymongo errors may quote it)."""
        text = text.replace(self.uri, redact_uri(self.uri))
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _describe(self, exc: BaseException) -> str:
        """A short reason: pymongo's messages end in a long topology dump."""
        if isinstance(exc, OperationFailure) and exc.details:
            text = f"{exc.details.get('errmsg') or exc} ({exc.details.get('codeName', exc.code)})"
        else:
            text = re.split(r" \(configured timeouts|, Timeout: |, full error: ", str(exc))[0]
        return self.scrub(f"{type(exc).__name__}: {text}")[:300]

    @property
    def where(self) -> str:
        return f"{redact_uri(self.uri)} (database {self.database_name!r})"

    # -- connection --------------------------------------------------------------
    def connect(self) -> None:
        """Create the client and ping the server; raise MongoUnavailable if it fails."""
        advice = (
            "Start MongoDB or point MONGODB_URI at a running server; or unset "
            "MONGODB_URI: ./scripts/crawl then starts an embedded server, and a plain "
            "`scrapy crawl` runs without MongoDB."
        )
        try:
            self._client = MongoClient(
                self.uri,
                serverSelectionTimeoutMS=int(self.server_selection_timeout * 1000),
                connectTimeoutMS=int(self.server_selection_timeout * 1000),
            )
            concern = {**self._client.write_concern.document, "j": True}
            self._db = self._client.get_database(
                self.database_name, write_concern=WriteConcern(**concern)
            )
            self._client.admin.command("ping")
        except (ConfigurationError, ValueError) as exc:  # pymongo: ValueError too
            self.close()
            raise MongoUnavailable(
                f"MONGODB_URI is not valid ({redact_uri(self.uri)}): "
                f"{self._describe(exc)}"
            ) from None
        except ConnectionFailure as exc:
            self.close()
            raise MongoUnavailable(
                f"Cannot reach MongoDB at {self.where} within "
                f"{self.server_selection_timeout:g} s: {self._describe(exc)}. {advice}"
            ) from None
        except OperationFailure as exc:
            self.close()
            raise MongoUnavailable(
                f"MongoDB at {self.where} refused the connection: "
                f"{self._describe(exc)}. Check the user and password in MONGODB_URI."
            ) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- writing ---------------------------------------------------------------
    def write(self, batch: list[Pending]) -> Outcome:
        """Write a batch, retrying connection errors; spill what cannot be written."""
        outcome = Outcome()
        if self._held:
            # The crawl is stopping; finish() tries them all, in order.
            self._hold(batch, outcome)
            return outcome
        try:
            if self._spilled and not self._unspill(outcome, retries=0, probe=True):
                # Still down: queue behind what is already spilled to keep the order.
                self._spill(batch, outcome)
                return outcome
            unwritten = self._write_with_retries(batch, outcome)
            if unwritten:
                self._spill(unwritten, outcome)
            if unwritten and not self._held:
                logger.warning(
                    "MongoDB at %s is unreachable after %d retries; documents are saved "
                    "to %s until it answers again",
                    self.where,
                    self.retry_times,
                    self.spill_path.resolve(),
                )
        except Exception:  # a bug must not lose the batch
            logger.exception("Unexpected error while writing to MongoDB")
            self._spill(batch, outcome)
        return outcome

    def finish(self) -> Outcome:
        """At close: move spilled documents into MongoDB if possible, else report."""
        outcome = Outcome()
        if self._held:
            self._place_held(outcome)
        if self._spilled and not self._unspill(outcome, retries=self.retry_times):
            outcome.left_in_spill = self._spilled
            logger.error(
                "MongoDB at %s could not be reached: %d documents were not stored there "
                "and are saved in %s. Nothing is lost: when MongoDB is back, run\n"
                "    MONGODB_URI=... %s %s\n(from the project root, with the same "
                "MONGODB_DATABASE).",
                self.where,
                self._spilled,
                self.spill_path.resolve(),
                REPLAY_COMMAND,
                self.spill_path.resolve(),
            )
        if self.rejected_path.exists():
            logger.error(
                "Documents refused by MongoDB are in %s, each with the reason",
                self.rejected_path.resolve(),
            )
        return outcome

    def replay(self, lines: Iterable[str], retries: int | None = None) -> Outcome:
        """Write the documents of a spill file, in order; raise MongoUnavailable if
        MongoDB still fails after the retries."""
        outcome = Outcome()
        documents = (Pending.from_json(line) for line in lines if line.strip())
        for chunk in _chunks(documents, self.batch_size):
            if self._write_with_retries(chunk, outcome, retries):
                raise MongoUnavailable(f"MongoDB at {self.where} does not answer")
        return outcome

    def _write_with_retries(
        self, batch: list[Pending], outcome: Outcome, retries: int | None = None
    ) -> list[Pending]:
        """Write ``batch``; return what is still unwritten after the retries."""
        retries = self.retry_times if retries is None else retries
        pending, refused = _split_encodable(batch, self.keeps_large_documents)
        self._reject(refused, outcome)
        for attempt in range(retries + 1):
            try:
                outcome.add(self._write_once(pending))
                return []
            except _Retry as exc:
                outcome.add(exc.outcome)
                pending, reason = exc.pending, str(exc)
            except ConnectionFailure as exc:
                reason = self._describe(exc)
            if attempt < retries:
                delay = min(self.retry_backoff * 2**attempt, MAX_BACKOFF)
                outcome.retries += 1
                logger.warning(
                    "MongoDB write of %d documents failed (%s); retry %d/%d in %.1f s",
                    len(pending),
                    reason,
                    attempt + 1,
                    retries,
                    delay,
                )
                self._sleep(delay)
        return pending

    def _write_once(self, batch: list[Pending]) -> Outcome:
        """One attempt. Raise ConnectionFailure or _Retry when it should be repeated.

        The batch is cut where the write strategy changes and the pieces are written in
        order; when one piece leaves documents to retry, they and every later piece
        are retried, so a document never overtakes one queued before it.
        """
        outcome = Outcome(batches=1)
        start = 0
        while start < len(batch):
            strategy = batch[start].target.strategy
            end = start
            while end < len(batch) and batch[end].target.strategy == strategy:
                end += 1
            result = self._strategy(strategy).write(self, batch[start:end], outcome)
            if result.retry:
                raise _Retry(result.retry + batch[end:], "; ".join(result.reasons[:1]), outcome)
            start = end
        return outcome

    def _strategy(self, name: str) -> Any:
        if name not in self._strategies:
            self._strategies[name] = SnapshotWrites() if name == SNAPSHOT else load_object(name)()
        return self._strategies[name]

    def keeps_large_documents(self, pending: Pending) -> bool:
        return bool(self._strategy(pending.target.strategy).keeps_large_documents)

    @property
    def db(self) -> Any:
        assert self._db is not None, "connect() first"
        return self._db

    def ensure_index(self, name: str, key: Sequence[str], unique: bool = True) -> None:
        """Create the index on ``key`` once per writer (create_index is idempotent)."""
        if (name, tuple(key)) not in self._indexed:
            self.db[name].create_index([(f, ASCENDING) for f in key], unique=unique)
            self._indexed.add((name, tuple(key)))

    def bulk(
        self,
        name: str,
        key: Sequence[str],
        ops: list[Any],
        pendings: list[Pending],
        outcome: Outcome,
        *,
        latest: bool = False,
    ) -> BulkResult:
        """Run one unordered bulk write into collection ``name``, unique on ``key``
        (raises ConnectionFailure); ``pendings[i]`` is the document of ``ops[i]``.
        Per-document errors are sorted out: retryable ones come back in ``retry``,
        the others are rejected with their reason."""
        collection = self.db[name]
        try:
            self.ensure_index(name, key)
            collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            details = exc.details
            if details.get("writeConcernErrors"):
                error = details["writeConcernErrors"][0].get("errmsg")
                return BulkResult(0, pendings, [f"write concern error: {self.scrub(str(error))}"])
            result = BulkResult(len(ops), [], [])
            for error in details.get("writeErrors", []):
                pending, code = pendings[error["index"]], error.get("code")
                message = self.scrub(str(error.get("errmsg")))[:300]
                result.written -= 1
                if latest and code == DUPLICATE_KEY:
                    # The stored document is newer, so the filter excluded it and the
                    # upsert tried to insert a second one: the newer one stays.
                    outcome.latest_kept_newer += 1
                elif code in RETRYABLE_CODES or code == DUPLICATE_KEY:
                    # DUPLICATE_KEY here: a concurrent upsert of the same key (another
                    # process); the next attempt replaces that document.
                    result.retry.append(pending)
                    result.reasons.append(message)
                else:
                    self._reject([(pending, message)], outcome)
            return result
        except OperationFailure as exc:
            if exc.code in RETRYABLE_CODES or exc.has_error_label("RetryableWriteError"):
                return BulkResult(0, pendings, [self._describe(exc)])
            self._reject([(p, self._describe(exc)) for p in pendings], outcome)
            return BulkResult(0, [], [])
        return BulkResult(len(ops), [], [])

    # -- spill and rejected files -----------------------------------------------
    def _spill(self, batch: list[Pending], outcome: Outcome) -> None:
        try:
            _append_lines(self.spill_path, (p.to_json() for p in batch))
        except OSError as exc:
            self._hold(batch, outcome, exc)
            return
        self._spilled += len(batch)
        outcome.spilled += len(batch)

    def _hold(self, batch: list[Pending], outcome: Outcome, error: OSError | None = None) -> None:
        """Keep documents in memory that neither MongoDB nor the spill file took."""
        self._held.extend(batch)
        outcome.held += len(batch)
        if self.storage_error is None:
            self.storage_error = (
                f"MongoDB at {self.where} does not take documents and the spill file {self.spill_path.resolve()} "
                f"cannot be written ({(error.strerror if error else None) or error})"
            )
            logger.error(
                "%s: %d documents are held in memory. The crawl stops now so that no more work "
                "piles up; they are stored at close if MongoDB answers by then or the spill "
                "directory has room again (free space in MONGODB_SPILL_DIR).",
                self.storage_error, len(self._held),
            )

    def _place_held(self, outcome: Outcome) -> None:
        """At close: the held documents into MongoDB, else the spill file, else reported lost."""
        held, self._held = self._held, []
        unwritten = self._write_with_retries(held, outcome) if held else []
        if not unwritten:
            logger.info("MongoDB answers again: stored the %d documents held in memory", len(held))
            return
        try:
            _append_lines(self.spill_path, (p.to_json() for p in unwritten))
        except OSError as exc:
            outcome.lost += len(unwritten)
            keys = "; ".join(
                f"{p.target.collection} " + ", ".join(f"{k}={p.document.get(k)!r}" for k in p.target.key)[:160]
                for p in unwritten[:3]
            )
            logger.error(
                "%d documents were not stored: MongoDB at %s does not answer and the spill file %s "
                "cannot be written (%s). They are lost (the first: %s); run the crawl again once "
                "MongoDB or the disk is back, without --resume so that they are measured again.",
                len(unwritten), self.where, self.spill_path.resolve(), exc.strerror or exc, keys,
            )
            return
        self._spilled += len(unwritten)
        outcome.spilled += len(unwritten)

    def _unspill(self, outcome: Outcome, *, retries: int, probe: bool = False) -> bool:
        """Write the spill file into MongoDB, in order; True when it is empty."""
        now = time.monotonic()
        if probe and now < self._next_probe:
            return False
        self._next_probe = now + min(self.retry_backoff * 2**self.retry_times, MAX_BACKOFF)
        try:
            with self.spill_path.open(encoding="utf-8") as lines:
                attempt = self.replay(lines, retries)
        except MongoUnavailable:
            return False
        # Documents already written by an interrupted attempt are written again: the
        # upserts are idempotent, so that is harmless.
        attempt.unspilled = self._spilled
        outcome.add(attempt)
        logger.info(
            "MongoDB answers again: moved %d spilled documents from %s into it",
            self._spilled,
            self.spill_path.resolve(),
        )
        self.spill_path.unlink()
        self._spilled = 0
        return True

    def _reject(self, refused: list[tuple[Pending, str]], outcome: Outcome) -> None:
        if not refused:
            return
        for pending, reason in refused:
            logger.error(
                "MongoDB refused a document for %s (%s): %s; saved in %s",
                pending.target.collection,
                {f: pending.document.get(f) for f in pending.target.key},
                reason,
                self.rejected_path.resolve(),
            )
        _append_lines(self.rejected_path, (p.to_json(error=r) for p, r in refused))
        outcome.rejected += len(refused)


def _append_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _split_encodable(
    batch: list[Pending], keeps_large: Callable[[Pending], bool]
) -> tuple[list[Pending], list[tuple[Pending, str]]]:
    """Separate the documents BSON cannot encode, so that they don't fail the batch.
    Documents over 16 MB are refused unless their strategy keeps them another way."""
    valid, refused = [], []
    for pending in batch:
        try:
            size = len(bson.encode(pending.document))
        except (InvalidDocument, TypeError, OverflowError) as exc:
            refused.append((pending, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        pending.size = size
        if size > MAX_BSON_SIZE and not keeps_large(pending):
            refused.append((pending, f"document of {size} bytes is over MongoDB's 16 MB"))
        else:
            valid.append(pending)
    return valid, refused


def _document(item: Any) -> dict[str, Any]:
    """The item's fields as a dict. Shallow: nested dicts and lists are stored as they
    are (MongoKeysPipeline has already copied them), which spares a walk over every
    value of large items such as harvested datasets; a field holding an item is
    converted."""
    return {
        name: value if type(value) in _PLAIN or not ItemAdapter.is_item(value) else ItemAdapter(value).asdict()
        for name, value in ItemAdapter(item).items()
    }


_PLAIN = frozenset({str, int, float, bool, type(None), list, dict, tuple})


def _identity(doc: dict[str, Any], key: Sequence[str]) -> Any:
    values = tuple(doc.get(f) for f in key)
    try:
        hash(values)
    except TypeError:
        return json_util.dumps(values)
    return values


def _older(doc: dict[str, Any], other: dict[str, Any]) -> bool:
    """True when ``doc`` is from an older run than ``other`` (unknown: not older)."""
    try:
        return doc.get(RUN_FIELD) < other.get(RUN_FIELD)  # type: ignore[operator]
    except TypeError:
        return False


def _latest_op(doc: dict[str, Any], entity_key: Sequence[str]) -> ReplaceOne:
    query = {f: doc.get(f) for f in entity_key}
    if doc.get(RUN_FIELD) is not None:
        query[RUN_FIELD] = {"$lte": doc[RUN_FIELD]}
    return ReplaceOne(query, doc, upsert=True)


def _unique(pendings: list[Pending]) -> list[Pending]:
    seen: set[int] = set()
    return [p for p in pendings if not (id(p) in seen or seen.add(id(p)))]


def _chunks(items: Iterable[Pending], size: int) -> Iterator[list[Pending]]:
    chunk: list[Pending] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: Finish reason of a crawl stopped because neither MongoDB nor the spill file took documents.
STORAGE_UNAVAILABLE = "storage_unavailable"


class MongoPipeline:
    """Write items to MongoDB in batches from one writer thread (see module docstring)."""

    def __init__(
        self,
        crawler: Any,
        *,
        uri: str,
        database: str = "ckancrawl",
        batch_size: int = 100,
        flush_interval: float = 5.0,
        retry_times: int = 5,
        retry_backoff: float = 1.0,
        server_selection_timeout: float = 5.0,
        spill_dir: str = "mongodb-spill",
    ):
        self.crawler = crawler
        self._stopping = False
        self.stats = crawler.stats
        self.uri = uri
        self.database = database
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retry_times = max(0, retry_times)
        self.retry_backoff = retry_backoff
        self.server_selection_timeout = server_selection_timeout
        self.spill_dir = Path(spill_dir)
        self._targets: dict[type, Target | None] = {}
        self._buffer: list[Pending] = []
        self._writer: MongoWriter | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._flush_lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoPipeline:
        settings = crawler.settings
        uri = settings.get("MONGODB_URI") or os.environ.get("MONGODB_URI")
        if not uri:
            logger.info(NOT_SET_MESSAGE)
            raise NotConfigured
        return cls(
            crawler,
            uri=uri,
            database=settings.get("MONGODB_DATABASE", "ckancrawl"),
            batch_size=settings.getint("MONGODB_BATCH_SIZE", 100),
            flush_interval=settings.getfloat("MONGODB_FLUSH_INTERVAL", 5.0),
            retry_times=settings.getint("MONGODB_RETRY_TIMES", 5),
            retry_backoff=settings.getfloat("MONGODB_RETRY_BACKOFF", 1.0),
            server_selection_timeout=settings.getfloat(
                "MONGODB_SERVER_SELECTION_TIMEOUT", 5.0
            ),
            spill_dir=settings.get("MONGODB_SPILL_DIR", "mongodb-spill"),
        )

    async def open_spider(self) -> None:
        if not is_asyncio_available():
            raise RuntimeError(
                "MongoPipeline needs the asyncio reactor (Scrapy's default TWISTED_REACTOR)"
            )
        self._check_spill_dir()
        name = self.crawler.spider.name
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._writer = MongoWriter(
            self.uri,
            self.database,
            spill_path=self.spill_dir / f"{name}-{stamp}-{os.getpid()}.jsonl",
            batch_size=self.batch_size,
            retry_times=self.retry_times,
            retry_backoff=self.retry_backoff,
            server_selection_timeout=self.server_selection_timeout,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mongodb-writer")
        try:
            await self._in_writer(self._writer.connect)
        except MongoUnavailable as exc:
            logger.error("%s", exc)
            self._executor.shutdown(wait=False)
            self._writer = None
            raise
        logger.info("Storing items in MongoDB at %s", self._writer.where)
        self._ticker = asyncio.create_task(self._flush_periodically())

    def _check_spill_dir(self) -> None:
        """The spill file is where documents go when MongoDB is down: a directory that
        cannot take it would lose them mid-crawl, so the crawl does not start."""
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            probe = self.spill_dir / f".writable-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            message = (
                f"MONGODB_SPILL_DIR {str(self.spill_dir)!r} cannot be written ({exc.strerror or exc}): "
                "documents MongoDB does not take during an outage would be lost. "
                "Give a writable MONGODB_SPILL_DIR."
            )
            logger.error("%s", message)
            raise RuntimeError(message) from None

    async def process_item(self, item: Any) -> Any:
        target = self._target_of(type(item))
        if target is None:
            self.stats.inc_value("mongodb/items_not_stored")
            return item
        self._buffer.append(Pending(target, _document(item)))
        self.stats.inc_value("mongodb/items")
        if len(self._buffer) >= self.batch_size:
            await self._flush(force=False)
        return item

    async def close_spider(self) -> None:
        if self._writer is None:
            return
        self._closing.set()
        if self._ticker is not None:
            await self._ticker
        await self._flush(force=True)
        self._record(await self._in_writer(self._writer.finish))
        await self._in_writer(self._writer.close)
        assert self._executor is not None
        self._executor.shutdown(wait=False)

    def _target_of(self, item_class: type) -> Target | None:
        if item_class not in self._targets:
            target = self._targets[item_class] = Target.of(item_class)
            if target is None:
                logger.warning(
                    "%s has no mongo_collection: its items are not stored in MongoDB",
                    item_class.__qualname__,
                )
        return self._targets[item_class]

    async def _flush(self, *, force: bool) -> None:
        """Write full batches (and with ``force`` the partial one), one at a time.

        Callers queue on the lock while a batch is written: that is the backpressure.
        The first one in writes what has piled up; the others then find the buffer
        below the batch size and go on.
        """
        async with self._flush_lock:
            while self._buffer and (force or len(self._buffer) >= self.batch_size):
                batch = self._buffer[: self.batch_size]
                del self._buffer[: self.batch_size]
                assert self._writer is not None
                self._record(await self._in_writer(self._writer.write, batch))
                if self._writer.storage_error and not self._stopping:
                    self._stopping = True
                    stop_crawl(self.crawler, STORAGE_UNAVAILABLE)

    async def _flush_periodically(self) -> None:
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                try:
                    await self._flush(force=True)
                except Exception:
                    logger.exception("Time-based flush to MongoDB failed")

    async def _in_writer(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _record(self, outcome: Outcome) -> None:
        for name, value in outcome.counts():
            self.stats.inc_value(f"mongodb/{name}", value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ckancrawl.pipelines.mongodb",
        description="Write documents saved by MongoPipeline (spill files) into MongoDB. "
        "Safe to run more than once: writes are upserts.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="replay spill files")
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    replay.add_argument("--uri", default=os.environ.get("MONGODB_URI"),
                        help="default: $MONGODB_URI")
    replay.add_argument("--database", default=os.environ.get("MONGODB_DATABASE", "ckancrawl"),
                        help="default: $MONGODB_DATABASE or ckancrawl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if not args.uri:
        parser.error("set MONGODB_URI or pass --uri")
    first = args.files[0]
    writer = MongoWriter(
        args.uri,
        args.database,
        spill_path=first.with_name(first.stem + "-replay.jsonl"),
    )
    try:
        writer.connect()
        for path in args.files:
            with path.open(encoding="utf-8") as lines:
                outcome = writer.replay(lines)
            print(
                f"{path}: {outcome.documents_written} documents written, "
                f"{outcome.latest_written} latest updated, {outcome.latest_kept_newer} "
                f"latest kept (newer), {outcome.rejected} refused"
            )
    except MongoUnavailable as exc:
        print(f"error: {exc}. The files are unchanged; run again later.", file=sys.stderr)
        return 1
    finally:
        writer.close()
    if writer.rejected_path.exists():
        print(f"Refused documents, with the reason: {writer.rejected_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
