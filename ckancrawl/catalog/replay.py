"""Catch up on catalog writes a crawl could not make, from what MongoDB stored.

- :func:`replay_rows`: for each run of a series in MongoDB, count its rows in the
  datastore; where some are missing, look up which, and upsert those (built from the
  stored snapshots exactly as the crawl builds them).
- :func:`replay_pending`: write the pending files a crawl left (DATASTORE_PENDING_DIR).
- :func:`sync_latest`: sync every catalog dataset with the newest snapshot of its
  entity (``<collection>_latest``), as the catalog sync pipeline does.

Everything is safe to run again: rows are upserted on their key and the sync writes
only what differs.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ckancrawl.catalog.client import CatalogError
from ckancrawl.catalog.datastore import SeriesTable
from ckancrawl.catalog.fields import catalog_dataset_ref, fields_for, known_values
from ckancrawl.catalog.pending import PendingRows
from ckancrawl.catalog.series import Series, utc_timestamp
from ckancrawl.catalog.sync import FAILED, DatasetSync

logger = logging.getLogger(__name__)


@dataclass
class RunReplay:
    run: str
    in_mongodb: int
    in_datastore: int
    written: int = 0


def replay_rows(table: SeriesTable, history: Any, runs: Iterable[str] | None = None,
                report: Callable[[RunReplay], None] = lambda r: None) -> list[RunReplay]:
    """Write the rows of ``runs`` (default: every run in ``history``, a pymongo
    collection) that the datastore lacks."""
    series = table.series
    entity = series.item_class.entity_key[0]
    chosen = sorted(set(runs) if runs is not None else {r for r in history.distinct("run_timestamp") if r})
    done = []
    for run in chosen:
        documents = list(history.find({"run_timestamp": run}, {"_id": 0}))
        outcome = RunReplay(run, len(documents), table.count(utc_timestamp(run)))
        if documents and outcome.in_datastore < outcome.in_mongodb:
            present = table.names(utc_timestamp(run))
            missing = [series.row(doc) for doc in documents if str(doc.get(entity)) not in present]
            outcome.written = table.upsert(missing)
        report(outcome)
        done.append(outcome)
    return done


def replay_pending(table: SeriesTable, pending: PendingRows) -> int:
    """Write the pending rows of the table's series; delete their files once written."""
    paths, rows = pending.load()
    if not rows:
        return 0
    written = table.upsert(rows)
    pending.remove(paths)
    return written


def sync_latest(sync: DatasetSync, series: Series, latest: Any, concurrency: int = 4,
                read_batch: int = 50) -> Counter[str]:
    """Sync each catalog dataset with the newest stored snapshot of its entity; datasets
    are read ``read_batch`` at a time, as the pipeline reads them."""
    fields = fields_for(series.item_class)
    assert fields is not None
    work = []
    for document in latest.find({}, {"_id": 0}):
        ref = catalog_dataset_ref(document)
        known = known_values(document, fields)
        if ref and known:
            work.append((ref, known, document.get("catalog_dataset")))
    outcomes: Counter[str] = Counter()
    step = max(1, read_batch)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for start in range(0, len(work), step):
            chunk = work[start:start + step]
            found: dict[str, Any] = {}
            if step > 1:
                try:
                    found = sync.read_many([ref for ref, _, _ in chunk])
                except CatalogError as error:
                    logger.info("Reading %d datasets in one search failed (%s); reading them one by one",
                                len(chunk), error)
            for result in pool.map(lambda job: sync.sync(job[0], job[1], fields, job[2], found.get(job[0])), chunk):
                outcomes[result.outcome] += 1
                if result.outcome == FAILED:
                    outcomes[f"failed/{result.failure_kind}"] += 1
    return outcomes
