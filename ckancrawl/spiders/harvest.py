"""``harvest``: every dataset of CKAN portals into the raw metadata repository.

The OpenDataMonitor harvester on Scrapy: *gather* the datasets of a portal, *fetch*
their full metadata, *import* them (MongoPipeline with the raw repository strategies,
ckancrawl/pipelines/raw_repository.py). One :class:`~ckancrawl.items.HarvestedDataset`
per dataset, then one :class:`~ckancrawl.items.HarvestRun` per portal, yielded only
after every dataset of the portal has left the item pipelines.

Spider arguments:
- ``portal=URL``: the portal's home page (or any of its pages, or its API URL).
- ``portals=PATH``: a text file with one portal URL per line (``#`` starts a comment);
  the portals are harvested side by side, each throttled on its own (Scrapy's
  per-host download slots and AutoThrottle).
- ``method=search`` (default) or ``method=show``: ``search`` reads whole datasets from
  ``package_search`` pages; ``show`` is the original harvester's way, ``package_list``
  then one ``package_show`` per dataset (always a full harvest).
- ``since=ISO8601`` (``2024-05-01`` or ``2024-05-01T00:00:00Z``; no offset means UTC):
  only datasets whose ``metadata_modified`` is at or after it are fetched. Without it,
  a portal is harvested since its last complete harvest in the repository, minus
  HARVEST_SINCE_MARGIN; ``since=all`` fetches everything.
- ``run_timestamp=ISO8601``: see :class:`~ckancrawl.spiders.ckan_api.CkanApiSpider`.

Gather with ``package_search``: keyset pages sorted by id (see
:meth:`~ckancrawl.spiders.ckan_api.CkanApiSpider.search_datasets`), so a portal that
changes while it is paged still yields every dataset that stays on it, once; pages of
HARVEST_PAGE_SIZE rows, halved on server errors and timeouts (not below
HARVEST_MIN_PAGE_SIZE) and grown back after good pages. When search fails before the
first page, or still fails at the smallest page, the rest of the portal comes from
``package_list`` (paged where the portal pages it) plus ``package_show``.

An incremental harvest also lists every dataset id (``package_search`` with
``fl=id``), so that datasets missing from the repository are fetched
(``package_show``) and deletions are still found. A run is *complete* when the whole
list of ids was read and every dataset fetched; then the stored datasets that the
portal no longer lists are given in ``HarvestRun.deleted_ids`` and marked deleted. An
incomplete run never marks anything deleted.

Settings:
- HARVEST_PAGE_SIZE (1000): rows per package_search page (CKAN's maximum by default).
- HARVEST_MIN_PAGE_SIZE (10): the smallest page tried before falling back to package_show.
- HARVEST_SINCE_MARGIN (3600): seconds subtracted from the last complete harvest's
  start when harvesting incrementally (clock skew, search index lag).
- HARVEST_SHOW_CONCURRENCY (8): package_show calls in flight per portal (the
  download slot's CONCURRENT_REQUESTS_PER_DOMAIN still applies).
- MONGODB_URI, MONGODB_DATABASE: where the last complete harvest and the stored ids
  are read; without MONGODB_URI every run is a full harvest and deletions are unknown.

Stats: ``harvest/datasets``, ``harvest/datasets/package_show``, ``harvest/gaps_filled``,
``harvest/vanished`` (listed, then gone at package_show), ``harvest/portals/complete``,
``harvest/portals/incomplete``, ``harvest/fallback/package_show``,
``harvest/search_pages``, ``harvest/page_shrinks``, ``harvest/deleted``.
"""
from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.http import Response
from twisted.python.failure import Failure

from ckancrawl.content_hash import content_hash
from ckancrawl.failures import FetchError, describe_exception
from ckancrawl.items import HarvestedDataset, HarvestRun
from ckancrawl.site_urls import install_roots, portal_root, usable_url
from ckancrawl.spiders.ckan_api import (
    ERROR_STATUSES,
    HOST_FAILURES,
    CkanApiSpider,
    PageSize,
    SearchProgress,
    host_of,
    utc_now_iso,
)

METHODS = ("search", "show")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time as an aware UTC datetime; no offset means UTC."""
    value = text.strip()
    if _DATE.match(value):
        value += "T00:00:00"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since={text!r} is not an ISO 8601 date or time such as 2024-05-01 or "
            "2024-05-01T00:00:00Z (or since=all for a full harvest)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def solr_time(moment: datetime) -> str:
    """How Solr writes a UTC time (CKAN indexes metadata_modified as a Solr date)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def portal_key(url: str) -> str:
    """A portal's stable identity: its install root as given, normalised."""
    return portal_root(url)


def read_portals_file(path: str) -> list[str]:
    urls, bad = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if usable_url(text) is None:
            bad.append(f"line {number}: {text!r}")
        else:
            urls.append(usable_url(text))
    if bad:
        raise ValueError(f"portals={path!r} has lines that are not http(s) URLs: {'; '.join(bad[:5])}")
    if not urls:
        raise ValueError(f"portals={path!r} lists no portal URL")
    return urls


class HarvestSpider(CkanApiSpider):
    name = "harvest"

    def __init__(
        self,
        *args: Any,
        portal: str | None = None,
        portals: str | None = None,
        method: str | None = None,
        since: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if bool(portal) == bool(portals):
            raise ValueError("give one of -a portal=URL or -a portals=PATH (a file with one portal URL per line)")
        if portal is not None and usable_url(portal) is None:
            raise ValueError(f"portal={portal!r} is not an http(s) URL")
        if portals is not None and not Path(portals).is_file():
            raise ValueError(f"portals={portals!r}: no such file; give a text file with one portal URL per line")
        urls = [usable_url(portal)] if portal else read_portals_file(portals or "")
        self.portal_urls = list({portal_key(url): url for url in urls}.items())
        if method is not None and method not in METHODS:
            raise ValueError(f"method={method!r}: use method=search (the default) or method=show")
        self.method = method or "search"
        self.full = since is not None and since.strip().lower() == "all"
        self.since = None if since is None or self.full else parse_since(since)
        if self.method == "show" and self.since is not None:
            raise ValueError("method=show always fetches every dataset: since= does not apply to it")
        self._yielded: dict[str, int] = {}
        self._processed: dict[str, int] = {}
        self._drained: dict[str, asyncio.Event] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> HarvestSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider._item_done, signal=signal)
        return spider

    # -- settings -----------------------------------------------------------------------

    def _page_size(self) -> PageSize:
        settings = self.crawler.settings
        return PageSize(
            maximum=max(1, settings.getint("HARVEST_PAGE_SIZE", 1000)),
            minimum=max(1, settings.getint("HARVEST_MIN_PAGE_SIZE", 10)),
        )

    def _mongodb_uri(self) -> str | None:
        return self.crawler.settings.get("MONGODB_URI") or os.environ.get("MONGODB_URI")

    # -- the run ----------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for key, url in self.portal_urls:
            yield scrapy.Request(
                url,
                callback=self.harvest_portal,
                errback=self.harvest_portal_without_home,
                cb_kwargs={"portal": key, "listed_url": url},
                meta={"handle_httpstatus_list": ERROR_STATUSES},
                dont_filter=True,
            )

    async def harvest_portal(self, response: Response, portal: str, listed_url: str) -> AsyncIterator[Any]:
        async for output in self._harvest(portal, listed_url, home=response, home_error=None):
            yield output

    async def harvest_portal_without_home(self, failure: Failure) -> AsyncIterator[Any]:
        kwargs = failure.request.cb_kwargs
        home_error = describe_exception(failure, self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))
        async for output in self._harvest(kwargs["portal"], kwargs["listed_url"], home=None, home_error=home_error):
            yield output

    async def _harvest(
        self, portal: str, listed_url: str, home: Response | None, home_error: FetchError | None
    ) -> AsyncIterator[Any]:
        if portal in self._yielded:
            # A resumed job (JOBDIR) may hold the portal's request as well as start().
            self.logger.info("%s is already being harvested by this run", portal)
            return
        run = HarvestRun(portal=portal, run_timestamp=self.run_timestamp)
        self._yielded[portal] = self._processed[portal] = 0
        roots = (install_roots(home.url) if home is not None else []) + install_roots(listed_url)
        dead_hosts = {host_of(listed_url)} if home_error is not None and home_error.kind in HOST_FAILURES else set()
        api_url, _, attempts = await self.find_api(list(dict.fromkeys(roots)), dead_hosts)
        if api_url is None:
            run.errors.append(str(self.no_api_reason(attempts, home_error)))
            yield self._finish(run)
            return
        run.api_url = api_url
        state = await self._repository_state(portal, run)
        gather = _Gather(run, stored=state)
        try:
            if self.method == "show":
                run.method = "show"
                async for item in self._list_and_show(api_url, gather):
                    yield self._count(item)
            else:
                async for item in self._search(api_url, gather):
                    yield self._count(item)
        except FetchError as error:  # a failure of the fallback itself
            gather.fail(error)
        gather.conclude()
        await self._wait_until_processed(portal)
        yield self._finish(run)

    # -- gathering ------------------------------------------------------------------------

    async def _search(self, api_url: str, gather: _Gather) -> AsyncIterator[HarvestedDataset]:
        run = gather.run
        run.method = "search"
        fq = "" if run.since is None else f"+metadata_modified:[{run.since} TO *]"
        progress = SearchProgress()
        try:
            async for dataset in self.search_datasets(
                api_url, fq, page_size=self._page_size(), progress=progress
            ):
                item = gather.take(dataset, "package_search", self)
                if item is not None:
                    yield item
        except FetchError as error:
            run.page_shrinks += progress.shrinks
            run.errors.append(f"package_search: {error}")
            self.crawler.stats.inc_value("harvest/fallback/package_show")
            self.logger.warning(
                "package_search failed at %s after %d datasets (%s); the rest comes from "
                "package_list + package_show", api_url, progress.seen, error,
            )
            run.method = "search+show" if progress.seen else "show"
            async for item in self._list_and_show(api_url, gather):
                yield item
            return
        run.page_shrinks += progress.shrinks
        run.reported_count = progress.reported
        self.crawler.stats.inc_value("harvest/search_pages", progress.pages)
        if run.since is None:
            gather.listed_everything(gather.ids)
            return
        # Incremental: the full list of ids finds deletions and what the store lacks.
        listing = SearchProgress()
        listed: list[str] = []
        try:
            async for entry in self.search_datasets(
                api_url, "", params={"fl": "id"}, page_size=self._page_size(), progress=listing
            ):
                listed.append(entry["id"])
        except FetchError as error:
            gather.fail(FetchError(error.kind, f"listing the dataset ids: {error.detail}", error.status))
            return
        run.page_shrinks += listing.shrinks
        run.reported_count = listing.reported
        gather.listed_everything(listed)
        missing = gather.missing_from_store()
        if missing:
            self.crawler.stats.inc_value("harvest/gaps_filled", len(missing))
            async for item in self._show(api_url, missing, gather):
                yield item

    async def _list_and_show(self, api_url: str, gather: _Gather) -> AsyncIterator[HarvestedDataset]:
        names = await self.list_names(api_url, "package_list")
        gather.listed_names = len(names)
        wanted = [name for name in names if name not in gather.names]
        async for item in self._show(api_url, wanted, gather):
            yield item
        gather.listed_everything(gather.ids)

    async def _show(self, api_url: str, refs: list[str], gather: _Gather) -> AsyncIterator[HarvestedDataset]:
        """package_show of every name or id in ``refs``, several at once, in any order."""
        results: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        pending = iter(refs)
        workers = max(1, self.crawler.settings.getint("HARVEST_SHOW_CONCURRENCY", 8))

        async def work() -> None:
            for ref in pending:
                try:
                    results.put_nowait((ref, await self.call_action(api_url, "package_show", {"id": ref})))
                except FetchError as error:
                    results.put_nowait((ref, error))

        async def run_all() -> None:
            try:
                await asyncio.gather(*(work() for _ in range(workers)))
            finally:
                results.put_nowait(None)

        task = asyncio.ensure_future(run_all())
        try:
            while (result := await results.get()) is not None:
                ref, outcome = result
                if isinstance(outcome, FetchError):
                    gather.show_failed(ref, outcome, self)
                elif not isinstance(outcome, dict) or not isinstance(outcome.get("id"), str):
                    gather.fail(FetchError("wrong shape", f"package_show of {ref!r} is not a dataset"))
                else:
                    item = gather.take(outcome, "package_show", self)
                    if item is not None:
                        yield item
        finally:
            task.cancel()

    # -- the repository -------------------------------------------------------------------

    async def _repository_state(self, portal: str, run: HarvestRun) -> set[str] | None:
        """Set run.since; return the stored ids that are not deleted (None: no repository)."""
        if self.since is not None:
            run.since, run.since_source = solr_time(self.since), "argument"
        uri = self._mongodb_uri()
        if not uri:
            return None
        from ckancrawl.pipelines.raw_repository import RepositoryReader

        def read() -> tuple[dict[str, Any] | None, set[str]]:
            reader = RepositoryReader(uri, self.crawler.settings.get("MONGODB_DATABASE", "ckancrawl"))
            try:
                return reader.last_complete_run(portal), reader.active_ids(portal)
            finally:
                reader.close()

        try:
            last, active = await asyncio.to_thread(read)
        except Exception as exc:  # the pipeline reports an unusable MongoDB itself
            self.logger.warning("Could not read the repository for %s (%s): full harvest", portal, exc)
            return None
        if last and self.since is None and not self.full and self.method == "search":
            margin = timedelta(seconds=self.crawler.settings.getfloat("HARVEST_SINCE_MARGIN", 3600))
            run.since = solr_time(parse_since(last["run_timestamp"]) - margin)
            run.since_source = "last complete harvest"
        return active

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(self, item: HarvestedDataset) -> HarvestedDataset:
        self._yielded[item.portal] = self._yielded.get(item.portal, 0) + 1
        self.crawler.stats.inc_value("harvest/datasets")
        return item

    def _item_done(self, item: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(item, HarvestedDataset):
            return
        self._processed[item.portal] = self._processed.get(item.portal, 0) + 1
        event = self._drained.get(item.portal)
        if event is not None and self._processed[item.portal] >= self._yielded.get(item.portal, 0):
            event.set()

    async def _wait_until_processed(self, portal: str) -> None:
        """Until every dataset item of the portal has passed the pipelines (or was dropped)."""
        if self._processed.get(portal, 0) >= self._yielded.get(portal, 0):
            return
        event = self._drained[portal] = asyncio.Event()
        await event.wait()
        del self._drained[portal]

    def _finish(self, run: HarvestRun) -> HarvestRun:
        run.finished_at = utc_now_iso()
        stats = self.crawler.stats
        stats.inc_value(f"harvest/portals/{'complete' if run.complete else 'incomplete'}")
        stats.inc_value("harvest/page_shrinks", run.page_shrinks)
        if run.deleted_ids:
            stats.inc_value("harvest/deleted", len(run.deleted_ids))
        if not run.complete:
            self.logger.warning(
                "Harvest of %s is incomplete (nothing is marked deleted): %s",
                run.portal, "; ".join(run.errors[:5]) or "the dataset ids could not all be listed",
            )
        elif run.errors:
            self.logger.info("Harvest of %s is complete despite: %s", run.portal, "; ".join(run.errors[:5]))
        return run


class _Gather:
    """What one portal's gather has seen so far, and what it concludes."""

    def __init__(self, run: HarvestRun, stored: set[str] | None) -> None:
        self.run = run
        self.stored = stored
        self.ids: set[str] = set()
        self.names: set[str] = set()
        self.listed: set[str] | None = None
        self.listed_names: int | None = None
        self.failed = False

    def take(self, dataset: dict[str, Any], call: str, spider: HarvestSpider) -> HarvestedDataset | None:
        """An item for a dataset not yet taken in this run, else None."""
        dataset_id = dataset["id"]
        if dataset_id in self.ids:
            return None
        self.ids.add(dataset_id)
        name = dataset.get("name")
        if isinstance(name, str):
            self.names.add(name)
        if call == "package_show":
            spider.crawler.stats.inc_value("harvest/datasets/package_show")
        self.run.datasets += 1
        modified = dataset.get("metadata_modified")
        return HarvestedDataset(
            portal=self.run.portal,
            dataset_id=dataset_id,
            name=name if isinstance(name, str) else None,
            metadata_modified=modified if isinstance(modified, str) else None,
            raw=dataset,
            content_hash=content_hash(dataset),
            harvested_at=spider.run_timestamp,
            fetched_with=call,
        )

    def show_failed(self, ref: str, error: FetchError, spider: HarvestSpider) -> None:
        if error.kind == "ckan error" and error.status in (403, 404):
            # Listed, then deleted or made private before it was fetched: it is gone.
            spider.crawler.stats.inc_value("harvest/vanished")
            return
        self.fail(FetchError(error.kind, f"package_show of {ref!r}: {error.detail}", error.status))

    def fail(self, error: FetchError) -> None:
        self.failed = True
        self.run.errors.append(str(error))

    def listed_everything(self, ids: Iterable[str]) -> None:
        self.listed = set(ids)

    def missing_from_store(self) -> list[str]:
        """Listed ids neither stored (and not deleted) nor fetched in this run; none
        when there is no repository to compare with."""
        assert self.listed is not None
        if self.stored is None:
            return []
        return sorted(self.listed - self.stored - self.ids)

    def conclude(self) -> None:
        run = self.run
        run.complete = self.listed is not None and not self.failed
        if self.listed is not None:
            run.listed = len(self.listed | self.ids)
        if run.complete and self.stored is not None:
            run.deleted_ids = sorted(self.stored - self.listed - self.ids)
