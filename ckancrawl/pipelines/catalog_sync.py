"""Update each item's catalog dataset with what the crawl measured (``package_patch``).

For every item with a catalog dataset (``catalog_dataset_id`` / ``catalog_dataset``)
and fields declared in :mod:`ckancrawl.catalog.fields` (SiteSnapshot,
ExtensionSnapshot), :class:`~ckancrawl.catalog.sync.DatasetSync` reads the dataset,
writes only the fields whose meaning changed, verifies, and restores the previous
values if the write did not go through as sent. Unknown values are never written.
Items pass on unchanged whatever happens; the outcome goes to the log and the stats.

Datasets are read in batches: items arriving within CATALOG_SYNC_READ_WAIT seconds of
each other (at most CATALOG_SYNC_READ_BATCH) share one ``package_search`` by id; a
dataset the search does not return is read with ``package_show``. ckanapi runs in a
thread pool of CATALOG_SYNC_CONCURRENCY threads, never on the event loop;
``process_item`` waits for its dataset, so a slow catalog slows the item flow instead
of piling up work. If the catalog stops answering, the client stops trying for
CATALOG_DOWN_PAUSE seconds and the datasets of that time are reported as failed: the
next run (or ``python -m ckancrawl.catalog sync``) brings them up to date, since the
sync compares states rather than replaying changes.

On when CATALOG_SYNC_ENABLED is true and CKAN_API_KEY is in the environment; otherwise
one log line says why it is off. The key is never logged, and never put in items or
stats.

Settings (defaults in brackets):
- CATALOG_SYNC_ENABLED [False]: turn the pipeline on.
- CATALOG_SYNC_DRY_RUN [False]: log what would be written; write nothing.
- CATALOG_PROFILE_OVERWRITE [False]: site profile fields (site_type, location,
  latitude, longitude, language, notes) are written only where the catalog has none;
  true overwrites them too.
- CATALOG_SYNC_CONCURRENCY [4]: datasets synced at once (threads).
- CATALOG_SYNC_READ_BATCH [50]: datasets read with one package_search (1: one
  package_show per dataset).
- CATALOG_SYNC_READ_WAIT [0.5]: seconds an item waits for others to share its read.
- CATALOG_URL, or the spider's ``-a catalog=``: the catalog to write to.
- The client's CATALOG_TIMEOUT, CATALOG_RETRY_TIMES, CATALOG_RETRY_BACKOFF,
  CATALOG_RETRY_BACKOFF_MAX, CATALOG_MAX_CONCURRENT_WRITES, CATALOG_DOWN_PAUSE
  (:mod:`ckancrawl.catalog.client`).

Stats (``catalog_sync/``): ``items`` (items with a catalog dataset and fields),
``unchanged``, ``updated``, ``would_update`` (dry run), ``failed``,
``failed/<kind>``, ``not_restored``, ``fields_written``, ``skipped/no_catalog_dataset``,
``skipped/nothing_known``, ``read_batches``, and the client's ``calls/<action>``, ``writes``,
``retries``, ``errors/<kind>``, ``down``, ``not_tried``.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from itemadapter import ItemAdapter

from ckancrawl.catalog.client import CatalogClient, CatalogError
from ckancrawl.catalog.config import api_key_or_not_configured, catalog_url
from ckancrawl.catalog.fields import catalog_dataset_ref, fields_for, known_values
from ckancrawl.catalog.sync import FAILED, UNCHANGED, UPDATED, WOULD_UPDATE, DatasetSync, SyncResult

logger = logging.getLogger(__name__)

STATS = "catalog_sync"
#: How many failed dataset names the closing summary lists.
LISTED_FAILURES = 20


class CatalogSyncPipeline:
    def __init__(self, crawler: Any, api_key: str):
        self.crawler = crawler
        self.stats = crawler.stats
        self._api_key = api_key
        settings = crawler.settings
        self.dry_run = settings.getbool("CATALOG_SYNC_DRY_RUN", False)
        self.concurrency = max(1, settings.getint("CATALOG_SYNC_CONCURRENCY", 4))
        self.read_batch = max(1, settings.getint("CATALOG_SYNC_READ_BATCH", 50))
        self.read_wait = max(0.0, settings.getfloat("CATALOG_SYNC_READ_WAIT", 0.5))
        self._reads: _BatchedReads | None = None
        self.client: CatalogClient | None = None
        self.sync: DatasetSync | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._failed: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> CatalogSyncPipeline:
        key = api_key_or_not_configured(crawler.settings, "CATALOG_SYNC_ENABLED", "Catalog sync", logger)
        return cls(crawler, key)

    async def open_spider(self) -> None:
        url = catalog_url(self.crawler)
        self.client = CatalogClient.from_settings(self.crawler.settings, url, self._api_key)
        self.sync = DatasetSync(
            self.client, dry_run=self.dry_run,
            overwrite_profile=self.crawler.settings.getbool("CATALOG_PROFILE_OVERWRITE", False),
        )
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="catalog-sync")
        if self.read_batch > 1:
            self._reads = _BatchedReads(self.sync, self._executor, self.read_batch, self.read_wait, self.stats)
        logger.info("Catalog sync: updating datasets of %s%s", url, " (dry run: nothing is written)" if self.dry_run
                    else "")

    async def process_item(self, item: Any) -> Any:
        fields = fields_for(type(item))
        if fields is None or self.sync is None:
            return item
        snapshot = ItemAdapter(item)
        ref = catalog_dataset_ref(snapshot)
        if ref is None:
            self.stats.inc_value(f"{STATS}/skipped/no_catalog_dataset")
            return item
        known = known_values(snapshot, fields)
        if not known:
            self.stats.inc_value(f"{STATS}/skipped/nothing_known")
            return item
        self.stats.inc_value(f"{STATS}/items")
        loop = asyncio.get_running_loop()
        try:
            dataset = await self._reads.get(ref) if self._reads is not None else None
            result = await loop.run_in_executor(self._executor, self.sync.sync, ref, known, fields,
                                                snapshot.get("catalog_dataset"), dataset)
        except Exception:  # a bug must not drop the item
            logger.exception("Catalog sync of dataset %s failed unexpectedly; it may need checking", ref)
            result = SyncResult(str(ref), FAILED, reason="bug: see the traceback above", failure_kind="bug")
        self._record(result)
        return item

    def _record(self, result: SyncResult) -> None:
        name = {UNCHANGED: "unchanged", UPDATED: "updated", WOULD_UPDATE: "would_update", FAILED: "failed"}
        self.stats.inc_value(f"{STATS}/{name[result.outcome]}")
        if result.outcome == UPDATED:
            self.stats.inc_value(f"{STATS}/fields_written", len(result.changes))
        if result.outcome == FAILED:
            self.stats.inc_value(f"{STATS}/failed/{result.failure_kind}")
            if result.restored is False:
                self.stats.inc_value(f"{STATS}/not_restored")
            self._failed.append(result.dataset)  # DatasetSync logged the reason

    async def close_spider(self) -> None:
        if self.client is None:
            return
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        for name, value in sorted(self.client.counts.items()):
            self.stats.set_value(f"{STATS}/{name}", value)
        self.client.close()
        get = self.stats.get_value
        summary = (f"{get(f'{STATS}/updated', 0)} updated, {get(f'{STATS}/unchanged', 0)} unchanged, "
                   f"{get(f'{STATS}/failed', 0)} failed")
        if self.dry_run:
            summary += f", {get(f'{STATS}/would_update', 0)} would be updated (dry run)"
        if self._failed:
            listed = ", ".join(self._failed[:LISTED_FAILURES])
            more = f" and {len(self._failed) - LISTED_FAILURES} more" if len(self._failed) > LISTED_FAILURES else ""
            logger.error("Catalog sync: %s. Not updated: %s%s. The next run updates them, or run "
                         "`python -m ckancrawl.catalog sync %s` once the cause is fixed.",
                         summary, listed, more, self.crawler.spider.name)
        else:
            logger.info("Catalog sync: %s", summary)


class _BatchedReads:
    """Gathers the datasets items ask for into package_search calls of up to ``size``
    refs, sent when full or ``wait`` seconds after the first ref of the batch."""

    def __init__(self, sync: DatasetSync, executor: ThreadPoolExecutor, size: int, wait: float, stats: Any):
        self.sync = sync
        self.executor = executor
        self.size = size
        self.wait = wait
        self.stats = stats
        self._waiting: list[tuple[str, asyncio.Future[dict[str, Any] | None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, ref: str) -> dict[str, Any] | None:
        """The dataset as the batch read it, or None (then DatasetSync reads it alone)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._waiting.append((ref, future))
        if len(self._waiting) >= self.size:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(self.wait, self._send)
        return await future

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._read(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, batch: list[tuple[str, asyncio.Future[dict[str, Any] | None]]]) -> None:
        refs = list(dict.fromkeys(ref for ref, _ in batch))
        found: dict[str, dict[str, Any]] = {}
        try:
            found = await asyncio.get_running_loop().run_in_executor(self.executor, self.sync.read_many, refs)
            self.stats.inc_value(f"{STATS}/read_batches")
        except CatalogError as error:
            logger.debug("Reading %d catalog datasets in one search failed (%s); reading them one by one",
                         len(refs), error)
        except Exception:
            logger.exception("Reading catalog datasets in one search failed; reading them one by one")
        for ref, future in batch:
            if not future.done():
                future.set_result(found.get(ref))
