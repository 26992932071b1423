"""The raw metadata repository: how harvested datasets are kept in MongoDB.

MongoPipeline writes :class:`~ckancrawl.items.HarvestedDataset` and
:class:`~ckancrawl.items.HarvestRun` items with the two write strategies of this module
(their ``mongo_strategy``), through its one writer thread, batches, retries and spill
file. Keys are already encoded by MongoKeysPipeline (``raw`` and ``resource_facts``
are stored with the reversible key encoding of ckancrawl/pipelines/mongo_keys.py).

Collections (names from the item classes):

- ``raw_datasets``: one document per (portal, dataset_id), unique. The item's fields
  plus ``facts_hash`` (of resource_facts), ``first_harvested_at`` (the run that first
  stored the dataset), ``deleted`` / ``deleted_at`` and ``stored_in``. ``harvested_at``
  is the run that stored this version.
- ``raw_datasets_history``: earlier versions, unique on (portal, dataset_id,
  harvested_at, content_hash), each with ``superseded_at`` (the run that replaced it)
  and ``superseded_by`` (the new content_hash). Nothing is ever removed.
- ``raw_datasets_files`` (GridFS bucket: ``.files`` and ``.chunks``): documents that
  would pass MongoDB's 16 MB limit. Their ``raw`` and ``resource_facts`` are stored as
  one JSON file ``{"raw": ..., "resource_facts": ...}`` (keys encoded as in documents)
  with ``_id`` "<portal>|<dataset_id>|<harvested_at>|<content_hash>"; the document keeps
  every other field, ``raw`` and ``resource_facts`` are null and ``stored_in`` is
  ``{"gridfs": "raw_datasets_files", "file_id": ..., "bytes": ...}``. Each is logged
  as a warning and counted (``mongodb/raw_stored_in_gridfs``).
- ``harvest_runs``: one document per (portal, run_timestamp): the HarvestRun.

Writing a dataset (RawDatasetWrites), per batch: the stored versions are read (one
query, hashes only); a new dataset is inserted; an unchanged one (same content_hash,
and same resource facts when facts were gathered) is not written at all, unless it was
marked deleted, then it is only marked present again; a changed one is first copied
to the history collection, then replaced. An item older than the stored version (a
spill file replayed late) goes to the history only. Every step is an upsert on a
unique key, so a batch written twice (retry, replay) leaves the same state.

Writing a run (HarvestRunWrites): when the run is complete, its ``deleted_ids`` are
marked ``deleted: true`` with ``deleted_at`` = the run timestamp (documents already
marked keep their first deletion time; documents stored by a later run are left
alone), then the run document is upserted. The spider yields the run after every
dataset of the portal has left the pipelines, so it is written after them.

:class:`RepositoryReader` is what the harvest spider reads back: the last complete
run of a portal (incremental harvests start from it) and the stored ids that are not
deleted (to find deletions and gaps).

Settings: none of its own; MongoPipeline's (MONGODB_URI, MONGODB_DATABASE, ...).
Stats (``mongodb/``): raw_created, raw_changed, raw_unchanged, raw_undeleted,
raw_history_written, raw_older_to_history, raw_stored_in_gridfs, raw_deleted_marked.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import bson
import gridfs
from pymongo import DESCENDING, InsertOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.errors import OperationFailure

from ckancrawl.content_hash import canonical_json, content_hash
from ckancrawl.items import HarvestedDataset, HarvestRun
from ckancrawl.pipelines.mongodb import (
    MAX_BSON_SIZE,
    RETRYABLE_CODES,
    BulkResult,
    MongoWriter,
    Outcome,
    Pending,
)

logger = logging.getLogger(__name__)

DATASETS = HarvestedDataset.mongo_collection
HISTORY = DATASETS + "_history"
FILES = DATASETS + "_files"
RUNS = HarvestRun.mongo_collection
DATASET_KEY = HarvestedDataset.mongo_key
HISTORY_KEY = ("portal", "dataset_id", "harvested_at", "content_hash")
#: Room left for the fields a history copy adds to a document.
DOCUMENT_LIMIT = MAX_BSON_SIZE - 64 * 1024
#: Ids per update when marking deletions.
DELETE_CHUNK = 1000
_STATE = {"content_hash": 1, "facts_hash": 1, "deleted": 1, "harvested_at": 1, "portal": 1, "dataset_id": 1}


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["portal"], doc["dataset_id"]


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _stored(collection: Any, keys: Iterable[tuple[str, str]], projection: dict[str, int] | None) -> dict:
    """Stored documents by (portal, dataset_id): one query per portal and chunk."""
    by_portal: dict[str, list[str]] = {}
    for portal, dataset_id in keys:
        by_portal.setdefault(portal, []).append(dataset_id)
    found = {}
    for portal, ids in by_portal.items():
        for chunk in _chunks(ids, DELETE_CHUNK):
            for doc in collection.find({"portal": portal, "dataset_id": {"$in": chunk}}, projection):
                found[_key(doc)] = doc
    return found


def facts_hash(document: dict[str, Any]) -> str | None:
    facts = document.get("resource_facts")
    return None if facts is None else content_hash(facts)


class RawDatasetWrites:
    """Write strategy of HarvestedDataset (see the module docstring)."""

    keeps_large_documents = True

    def write(self, writer: MongoWriter, pendings: list[Pending], outcome: Outcome) -> BulkResult:
        db = writer.db
        newest: dict[tuple[str, str], Pending] = {}
        for pending in pendings:
            key = _key(pending.document)
            if key not in newest or newest[key].document["harvested_at"] <= pending.document["harvested_at"]:
                newest[key] = pending
        writer.ensure_index(DATASETS, DATASET_KEY)
        stored = _stored(db[DATASETS], newest, _STATE)
        changed = [k for k, p in newest.items() if k in stored and self._differs(p.document, stored[k])]
        full = _stored(db[DATASETS], changed, None) if changed else {}

        history_ops: list[Any] = []
        history_pendings: list[Pending] = []
        current_ops: list[Any] = []
        current_pendings: list[Pending] = []
        kinds: dict[int, str] = {}
        in_gridfs: set[int] = set()
        for key, pending in newest.items():
            new = pending.document
            old = stored.get(key)
            if old is None:
                kind = "created"
            elif new["harvested_at"] < (old.get("harvested_at") or ""):
                if new["content_hash"] == old.get("content_hash"):
                    outcome.count("raw_unchanged")
                    continue
                history_ops.append(self._history_op(
                    self._document(writer, new, old, pending.size), old["harvested_at"], old.get("content_hash")))
                history_pendings.append(pending)
                outcome.count("raw_older_to_history")
                continue
            elif key in full:
                kind = "changed"
                history_ops.append(self._history_op(full[key], new["harvested_at"], new["content_hash"]))
                history_pendings.append(pending)
            elif old.get("deleted"):
                kind = "undeleted"
                current_ops.append(UpdateOne(
                    {"portal": key[0], "dataset_id": key[1]},
                    {"$set": {"deleted": False, "deleted_at": None}},
                ))
                current_pendings.append(pending)
                kinds[id(pending)] = kind
                continue
            else:
                outcome.count("raw_unchanged")
                continue
            document = self._document(writer, new, full.get(key), pending.size)
            if kind == "created":
                # An insert: several times faster than an upsert on some servers. If
                # another writer got there first, the unique index refuses it and the
                # retry finds the stored document.
                current_ops.append(InsertOne(document))
            else:
                current_ops.append(ReplaceOne({"portal": key[0], "dataset_id": key[1]}, document, upsert=True))
            current_pendings.append(pending)
            kinds[id(pending)] = kind
            if document["stored_in"]:
                in_gridfs.add(id(pending))

        if history_ops:
            result = writer.bulk(HISTORY, HISTORY_KEY, history_ops, history_pendings, outcome)
            outcome.count("raw_history_written", result.written)
            if result.retry:
                # No current document is replaced before its old version is kept.
                return BulkResult(0, _unique(result.retry + current_pendings), result.reasons)
        if not current_ops:
            return BulkResult(0, [], [])
        result = writer.bulk(DATASETS, DATASET_KEY, current_ops, current_pendings, outcome)
        outcome.documents_written += result.written
        retry = {id(p) for p in result.retry}
        for pending in current_pendings:
            if id(pending) not in retry:
                outcome.count(f"raw_{kinds[id(pending)]}")
                outcome.count("raw_stored_in_gridfs", int(id(pending) in in_gridfs))
        return result

    @staticmethod
    def _differs(new: dict[str, Any], old: dict[str, Any]) -> bool:
        if new["content_hash"] != old.get("content_hash"):
            return True
        facts = facts_hash(new)
        return facts is not None and facts != old.get("facts_hash")

    @staticmethod
    def _history_op(old: dict[str, Any], superseded_at: str, superseded_by: str | None = None) -> ReplaceOne:
        document = {k: v for k, v in old.items() if k != "_id"}
        document["superseded_at"] = superseded_at
        document["superseded_by"] = superseded_by
        return ReplaceOne({f: document.get(f) for f in HISTORY_KEY}, document, upsert=True)

    def _document(self, writer: MongoWriter, new: dict[str, Any], old: dict[str, Any] | None,
                  size: int | None) -> dict[str, Any]:
        """The document to store for ``new`` (``size``: its BSON size, if measured);
        oversized content goes to GridFS."""
        document = dict(new)
        document["facts_hash"] = facts_hash(new)
        document["first_harvested_at"] = (old or {}).get("first_harvested_at") or (old or {}).get(
            "harvested_at") or new["harvested_at"]
        document["deleted"] = False
        document["deleted_at"] = None
        document["stored_in"] = None
        # The added fields are a few hundred bytes: measure again only near the limit.
        if (size is None or size > DOCUMENT_LIMIT - 4096) and len(bson.encode(document)) > DOCUMENT_LIMIT:
            document = self._to_gridfs(writer, document)
        return document

    @staticmethod
    def _to_gridfs(writer: MongoWriter, document: dict[str, Any]) -> dict[str, Any]:
        content = canonical_json({"raw": document["raw"], "resource_facts": document["resource_facts"]})
        file_id = "|".join(str(document[f]) for f in ("portal", "dataset_id", "harvested_at", "content_hash"))
        bucket = gridfs.GridFS(writer.db, collection=FILES)
        try:
            bucket.put(content, _id=file_id, filename=document["dataset_id"],
                       metadata={f: document[f] for f in ("portal", "dataset_id", "harvested_at", "content_hash")})
        except gridfs.errors.FileExists:
            pass  # written by an earlier attempt of this batch
        logger.warning(
            "Dataset %s of %s is %d bytes of JSON, past MongoDB's 16 MB document limit: "
            "its raw metadata and resource facts are stored in GridFS bucket %r, file %r",
            document["dataset_id"], document["portal"], len(content), FILES, file_id,
        )
        stored = dict(document, raw=None, resource_facts=None)
        stored["stored_in"] = {"gridfs": FILES, "file_id": file_id, "bytes": len(content)}
        return stored


def _unique(pendings: list[Pending]) -> list[Pending]:
    seen: set[int] = set()
    return [p for p in pendings if not (id(p) in seen or seen.add(id(p)))]


class HarvestRunWrites:
    """Write strategy of HarvestRun: deletions of a complete run, then the run document."""

    keeps_large_documents = False

    def write(self, writer: MongoWriter, pendings: list[Pending], outcome: Outcome) -> BulkResult:
        datasets = writer.db[DATASETS]
        for pending in pendings:
            run = pending.document
            deleted = run.get("deleted_ids") or []
            if not (run.get("complete") and deleted):
                continue
            marked = 0
            try:
                for chunk in _chunks(list(deleted), DELETE_CHUNK):
                    result = datasets.update_many(
                        {
                            "portal": run["portal"],
                            "dataset_id": {"$in": chunk},
                            "deleted": {"$ne": True},
                            "harvested_at": {"$lte": run["run_timestamp"]},
                        },
                        {"$set": {"deleted": True, "deleted_at": run["run_timestamp"]}},
                    )
                    marked += result.modified_count
            except OperationFailure as exc:
                if exc.code in RETRYABLE_CODES or exc.has_error_label("RetryableWriteError"):
                    outcome.count("raw_deleted_marked", marked)
                    return BulkResult(0, pendings, [str(exc)[:300]])
                raise
            outcome.count("raw_deleted_marked", marked)
        key = pendings[0].target.key
        ops = [ReplaceOne({f: p.document.get(f) for f in key}, p.document, upsert=True) for p in pendings]
        result = writer.bulk(pendings[0].target.collection, key, ops, pendings, outcome)
        outcome.documents_written += result.written
        return result


class RepositoryReader:
    """Reads what the harvest spider needs from the repository. Blocking: call it in a thread."""

    def __init__(self, uri: str, database: str, timeout: float = 5.0) -> None:
        self._client = MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000),
                                   connectTimeoutMS=int(timeout * 1000))
        self._db = self._client[database]

    def last_complete_run(self, portal: str) -> dict[str, Any] | None:
        """The newest complete HarvestRun document of ``portal``, or None."""
        found = list(self._db[RUNS].find({"portal": portal, "complete": True}, {"_id": 0, "deleted_ids": 0})
                     .sort("run_timestamp", DESCENDING).limit(1))
        return found[0] if found else None

    def active_ids(self, portal: str) -> set[str]:
        """Ids of the portal's stored datasets that are not marked deleted."""
        cursor = self._db[DATASETS].find({"portal": portal, "deleted": {"$ne": True}}, {"dataset_id": 1, "_id": 0})
        return {doc["dataset_id"] for doc in cursor}

    def close(self) -> None:
        self._client.close()


def read_gridfs_content(db: Any, stored_in: dict[str, Any]) -> dict[str, Any]:
    """``{"raw": ..., "resource_facts": ...}`` of a document kept in GridFS."""
    bucket = gridfs.GridFS(db, collection=stored_in["gridfs"])
    return json.loads(bucket.get(stored_in["file_id"]).read())
