"""Append each item to its time series in the catalog's datastore.

SiteSnapshot items go to the resource DATASTORE_SITES_RESOURCE of dataset
DATASTORE_SITES_DATASET, ExtensionSnapshot items to DATASTORE_EXTENSIONS_RESOURCE of
DATASTORE_EXTENSIONS_DATASET; the columns and the key (name, run_timestamp) are
declared in :mod:`ckancrawl.catalog.series`. Rows are buffered and written with
``datastore_upsert`` (method ``upsert``) in batches of DATASTORE_BATCH_SIZE, when a
batch is full, every DATASTORE_FLUSH_INTERVAL seconds and at close, so a rerun or a
resumed run replaces its rows instead of duplicating them.

Before the first write the table is looked up (and with DATASTORE_SERIES_CREATE made,
with its dataset and resource); a table whose columns differ from the declaration is
reported and nothing is written to it.

Nothing is lost when the catalog is down or the table is unusable: rows stay in the
buffer and are tried again at the next flush; what is left at close is saved to
DATASTORE_PENDING_DIR (:mod:`ckancrawl.catalog.pending`) and written by the next crawl,
and the stored snapshots in MongoDB can be replayed with
``python -m ckancrawl.catalog replay sites`` (or ``extensions``).

ckanapi runs in one worker thread, never on the event loop. On when
DATASTORE_SERIES_ENABLED is true and CKAN_API_KEY is in the environment.

Settings (defaults in brackets):
- DATASTORE_SERIES_ENABLED [False]: turn the pipeline on.
- DATASTORE_SITES_DATASET [ckan-sites-metadata], DATASTORE_SITES_RESOURCE
  [CKAN Sites Dynamic Metadata], DATASTORE_EXTENSIONS_DATASET
  [ckan-extensions-metadata], DATASTORE_EXTENSIONS_RESOURCE
  [CKAN Extensions Dynamic Metadata]: where the series live.
- DATASTORE_SERIES_CREATE [False]: create a missing dataset, resource or table.
- DATASTORE_SERIES_OWNER_ORG [None]: the organization of a dataset it creates.
- DATASTORE_BATCH_SIZE [100]: rows per datastore_upsert.
- DATASTORE_FLUSH_INTERVAL [10.0]: seconds between time-based writes.
- DATASTORE_PENDING_DIR [datastore-pending]: where unwritten rows wait for the next run.
- CATALOG_URL (or ``-a catalog=``) and the client settings of
  :mod:`ckancrawl.catalog.client`.

Stats (``datastore/``): ``rows`` (queued), ``rows_written``, ``batches``,
``rows_from_pending`` (loaded from earlier runs), ``rows_pending`` (left for the next
run), ``rows_unconvertible``, ``table_problems``, and the client's ``calls/<action>``,
``writes``, ``retries``, ``errors/<kind>``, ``down``, ``not_tried``.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter

from ckancrawl.catalog.client import CatalogClient, CatalogError
from ckancrawl.catalog.config import api_key_or_not_configured, catalog_url
from ckancrawl.catalog.datastore import SeriesTable, TableProblem
from ckancrawl.catalog.pending import PendingRows
from ckancrawl.catalog.series import SERIES, series_for

logger = logging.getLogger(__name__)

STATS = "datastore"
REPLAY = "python -m ckancrawl.catalog replay"


class _SeriesBuffer:
    """Rows of one series waiting to be written, and what the pipeline knows of its table."""

    def __init__(self, table: SeriesTable, pending: PendingRows):
        self.table = table
        self.pending = pending
        self.rows: list[dict[str, Any]] = []
        #: Pending files loaded at open, deleted once their rows (the first ones) are written.
        self.pending_files: list[Path] = []
        self.pending_rows = 0
        #: Why this table cannot be written in this run (reported once).
        self.blocked: str | None = None


class DatastoreSeriesPipeline:
    def __init__(self, crawler: Any, api_key: str):
        self.crawler = crawler
        self.stats = crawler.stats
        self._api_key = api_key
        settings = crawler.settings
        self.batch_size = max(1, settings.getint("DATASTORE_BATCH_SIZE", 100))
        self.flush_interval = settings.getfloat("DATASTORE_FLUSH_INTERVAL", 10.0)
        self.pending_dir = Path(settings.get("DATASTORE_PENDING_DIR") or "datastore-pending")
        self.client: CatalogClient | None = None
        self._buffers: dict[str, _SeriesBuffer] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> DatastoreSeriesPipeline:
        key = api_key_or_not_configured(crawler.settings, "DATASTORE_SERIES_ENABLED", "Datastore time series", logger)
        return cls(crawler, key)

    async def open_spider(self) -> None:
        settings = self.crawler.settings
        url = catalog_url(self.crawler)
        self.client = CatalogClient.from_settings(settings, url, self._api_key)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datastore")
        for series in SERIES.values():
            table = SeriesTable.from_settings(self.client, series, settings)
            buffer = _SeriesBuffer(table, PendingRows(self.pending_dir, series.name, table.destination))
            buffer.pending_files, buffer.rows = buffer.pending.load()
            buffer.pending_rows = len(buffer.rows)
            if buffer.rows:
                self.stats.inc_value(f"{STATS}/rows_from_pending", len(buffer.rows))
                logger.info("Datastore: %s of the %s series left by earlier runs (%s), written with this run's",
                            _rows(len(buffer.rows)), series.name, ", ".join(str(p) for p in buffer.pending_files))
            self._buffers[series.name] = buffer
        logger.info("Datastore time series: writing to %s", url)
        self._ticker = asyncio.create_task(self._flush_periodically())

    async def process_item(self, item: Any) -> Any:
        series = series_for(type(item))
        if series is None or self.client is None:
            return item
        try:
            row = series.row(ItemAdapter(item))
        except (TypeError, ValueError) as error:
            self.stats.inc_value(f"{STATS}/rows_unconvertible")
            logger.error("Datastore: cannot make a %s row of %r: %s", series.name, item, error)
            return item
        buffer = self._buffers[series.name]
        buffer.rows.append(row)
        self.stats.inc_value(f"{STATS}/rows")
        if len(buffer.rows) >= self.batch_size:
            try:
                await self._flush(series.name, partial=False)
            except Exception:  # a bug must not drop the item; its row stays buffered
                logger.exception("Datastore write of the %s series failed unexpectedly", series.name)
        return item

    async def _flush(self, name: str, *, partial: bool) -> None:
        """Write the full batches of a series (with ``partial``, the last one too); stop
        at the first failure, keeping the rows."""
        buffer = self._buffers[name]
        async with self._lock:
            while buffer.rows and buffer.blocked is None and (partial or len(buffer.rows) >= self.batch_size):
                assert self.client is not None
                if self.client.is_down():
                    return
                batch = buffer.rows[: self.batch_size]
                try:
                    await self._in_thread(buffer.table.upsert, batch)
                except TableProblem as problem:
                    self._block(buffer, str(problem))
                    return
                except CatalogError as error:
                    if error.kind in ("unavailable", "server error"):
                        logger.warning("Datastore: %s of the %s series not written yet (%s); kept and tried again",
                                       _rows(len(buffer.rows)), name, error)
                        return
                    self._block(buffer, f"{buffer.table.where}: {error}")
                    return
                del buffer.rows[: len(batch)]
                self.stats.inc_value(f"{STATS}/rows_written", len(batch))
                self.stats.inc_value(f"{STATS}/batches")
                if buffer.pending_files:
                    buffer.pending_rows -= len(batch)
                    if buffer.pending_rows <= 0:
                        buffer.pending.remove(buffer.pending_files)
                        buffer.pending_files = []

    def _block(self, buffer: _SeriesBuffer, reason: str) -> None:
        buffer.blocked = reason
        self.stats.inc_value(f"{STATS}/table_problems")
        logger.error("Datastore: %s. The rows are kept and written by a later run.", reason)

    async def _flush_periodically(self) -> None:
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), self.flush_interval)
            except asyncio.TimeoutError:
                for name in self._buffers:
                    try:
                        await self._flush(name, partial=True)
                    except Exception:
                        logger.exception("Time-based datastore write failed")

    async def close_spider(self) -> None:
        if self.client is None:
            return
        self._closing.set()
        if self._ticker is not None:
            await self._ticker
        for name, buffer in self._buffers.items():
            await self._flush(name, partial=True)
            if buffer.rows:
                self._keep_for_later(name, buffer)
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        for counter, value in sorted(self.client.counts.items()):
            self.stats.set_value(f"{STATS}/{counter}", value)
        self.client.close()

    def _keep_for_later(self, name: str, buffer: _SeriesBuffer) -> None:
        path = buffer.pending.save(buffer.rows)
        buffer.pending.remove(buffer.pending_files)  # their rows are in the new file
        self.stats.inc_value(f"{STATS}/rows_pending", len(buffer.rows))
        logger.error(
            "Datastore: %s of the %s series not written (%s), saved in %s. Nothing is lost: the next "
            "crawl writes them, or run `%s %s` (rows from MongoDB) or `%s %s --no-mongodb --pending-dir %s` once "
            "the catalog takes them.", _rows(len(buffer.rows)), name, buffer.blocked or "the catalog did not answer",
            path.resolve(), REPLAY, name, REPLAY, name, self.pending_dir.resolve())

    async def _in_thread(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)



def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
