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

A large portal can be split: with HARVEST_SPLIT above 1 (the default in distributed
mode), a portal whose ``count`` holds at least two pages is cut into up to that many
ranges of dataset ids, each a scheduled request that pages its own range (keyset pages
within it). The ranges are harvested side by side, and in a distributed run by whichever
processes take them; each range reports to a ledger (:mod:`ckancrawl.split_ledger`) and
the last one to finish yields the portal's HarvestRun, complete only when every range
is. A range whose package_search fails for good is not rescued with package_list (that
cannot be cut by id): the run is then incomplete, marks nothing deleted, and the next
incremental harvest starts from the last complete one.

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
- HARVEST_SPLIT (0): the most id ranges a large portal is cut into; 0 means 16 in
  distributed mode (CKANCRAWL_REDIS_URL set) and 1 (no split) otherwise.
- MONGODB_URI, MONGODB_DATABASE: where the last complete harvest and the stored ids
  are read; without MONGODB_URI every run is a full harvest and deletions are unknown.

Stats: ``harvest/datasets``, ``harvest/datasets/package_show``, ``harvest/gaps_filled``,
``harvest/vanished`` (listed, then gone at package_show), ``harvest/portals/complete``,
``harvest/portals/incomplete``, ``harvest/fallback/package_show``,
``harvest/search_pages``, ``harvest/page_shrinks``, ``harvest/deleted``,
``harvest/split_portals``, ``harvest/split_ranges`` (ranges scheduled),
``harvest/ranges_done`` (ranges this process harvested).

A cancelled job (scrapyd cancel, Ctrl-C) stops paging at once: the portals in progress
end with a "stopped" error and are incomplete.
"""
from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import scrapy
from itemadapter import ItemAdapter
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
    action_url,
    as_count,
    host_of,
    read_envelope,
    solr_quoted,
    utc_now_iso,
)
from ckancrawl.split_ledger import Ledger, ledger_for

METHODS = ("search", "show")
#: HARVEST_SPLIT's meaning of 0 in distributed mode; ranges are cut on the first two hex
#: digits of the ids, so 256 is the most there can be.
DISTRIBUTED_SPLIT = 16
MAX_SPLIT = 256
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


@dataclass(frozen=True)
class IdRange:
    """Dataset ids from ``lower`` (included) to ``upper`` (excluded); None is open.

    CKAN's ids are UUIDs, so ranges cut on their first hex digits hold about as many
    datasets each; ids of any other shape still fall in exactly one range, since the
    ranges cover every string in Solr's (code point) order.
    """

    lower: str | None = None
    upper: str | None = None

    @classmethod
    def split(cls, parts: int) -> list[IdRange]:
        parts = max(1, min(parts, MAX_SPLIT))
        cuts = [f"{i * 256 // parts:02x}" for i in range(1, parts)]
        bounds: list[str | None] = [None, *cuts, None]
        return [cls(bounds[i], bounds[i + 1]) for i in range(parts)]

    @property
    def whole(self) -> bool:
        return self.lower is None and self.upper is None

    def solr(self) -> str:
        """The range as an fq clause ('' for every id)."""
        if self.whole:
            return ""
        lower = "*" if self.lower is None else solr_quoted(self.lower)
        upper = "*" if self.upper is None else solr_quoted(self.upper)
        return f"+id:[{lower} TO {upper}{'}' if self.upper is not None else ']'}"

    def holds(self, dataset_id: str) -> bool:
        return (self.lower is None or dataset_id >= self.lower) and (self.upper is None or dataset_id < self.upper)

    def __str__(self) -> str:
        return f"ids {self.lower or ''}..{self.upper or ''}"


def merge_parts(portal_run: dict[str, Any], parts: list[dict[str, Any]]) -> HarvestRun:
    """The portal's HarvestRun from the one made when it was split and its ranges' runs."""
    run = HarvestRun(**portal_run)
    run.complete = bool(parts) and all(part.get("complete") is True for part in parts)
    run.datasets = sum(part.get("datasets") or 0 for part in parts)
    listed = [part.get("listed") for part in parts]
    run.listed = None if None in listed else sum(listed)
    run.page_shrinks += sum(part.get("page_shrinks") or 0 for part in parts)
    run.errors = [*run.errors, *(error for part in parts for error in part.get("errors") or [])]
    deleted = [part.get("deleted_ids") for part in parts]
    run.deleted_ids = sorted(i for ids in deleted for i in ids) if run.complete and None not in deleted else None
    return run


def search_filter(since: str | None, id_range: IdRange) -> str:
    """The package_search ``fq`` of an incremental harvest (``since``) and an id range."""
    modified = "" if since is None else f"+metadata_modified:[{since} TO *]"
    return f"{modified} {id_range.solr()}".strip()


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
    #: A portal is paged inside one callback: a cancelled job stops paging at once.
    stop_fetching_when_closing = True

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
        #: Items yielded and done with (out of the pipelines) per piece of work: a portal,
        #: or one id range of a split portal; which work an item in flight belongs to.
        self._yielded: dict[str, int] = {}
        self._processed: dict[str, int] = {}
        self._drained: dict[str, asyncio.Event] = {}
        self._work_of: dict[int, str] = {}
        #: Repository reads shared by the ranges of a portal running in this process.
        self._repository_reads: dict[str, asyncio.Future[tuple[dict[str, Any] | None, set[str]]]] = {}
        self._ranges_running: dict[str, int] = {}
        self._ledger: Ledger | None = None

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

    def _split_limit(self) -> int:
        settings = self.crawler.settings
        limit = settings.getint("HARVEST_SPLIT", 0)
        if limit <= 0:
            limit = DISTRIBUTED_SPLIT if settings.get("CKANCRAWL_REDIS_URL") else 1
        return min(limit, MAX_SPLIT)

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
        if self.method == "search":
            ranges = await self._ranges(api_url, run)
            if len(ranges) > 1:
                for request in await self._split(run, ranges):
                    yield request
                return
        gather = _Gather(run, stored=state)
        try:
            if self.method == "show":
                run.method = "show"
                async for item in self._list_and_show(api_url, gather):
                    yield self._count(item, portal)
            else:
                async for item in self._search(api_url, gather):
                    yield self._count(item, portal)
        except FetchError as error:  # a failure of the fallback itself
            gather.fail(error)
        gather.conclude()
        await self._wait_until_processed(portal)
        yield self._finish(run)

    # -- split portals --------------------------------------------------------------------

    async def _ranges(self, api_url: str, run: HarvestRun) -> list[IdRange]:
        """The id ranges to cut the portal into: one unless it is large and splitting is on."""
        limit = self._split_limit()
        if limit <= 1:
            return [IdRange()]
        try:
            # Every dataset, also in an incremental run: each range lists all its ids.
            result = await self.call_action(api_url, "package_search", self._count_query(None, IdRange()))
            count = as_count(result.get("count") if isinstance(result, dict) else None, "package_search count")
        except FetchError as error:
            # The whole-portal path knows what to do (smaller pages, package_show).
            self.logger.info("Not splitting %s: counting its datasets failed (%s)", run.portal, error)
            return [IdRange()]
        run.reported_count = count
        return IdRange.split(min(limit, count // self._page_size().maximum))

    @staticmethod
    def _count_query(since: str | None, id_range: IdRange) -> dict[str, Any]:
        fq = search_filter(since, id_range)
        return {"q": "*:*", "rows": 0, **({"fq": fq} if fq else {})}

    async def _split(self, run: HarvestRun, ranges: list[IdRange]) -> list[scrapy.Request]:
        """One scheduled request per range (its datasets' count). Each carries the portal's
        run as it is so far, so whichever process finishes the last range can conclude it
        (also a resumed job whose ranges came back from the job directory's queue)."""
        run.split = len(ranges)
        portal_run = ItemAdapter(run).asdict()
        self.crawler.stats.inc_value("harvest/split_portals")
        self.crawler.stats.inc_value("harvest/split_ranges", len(ranges))
        self.logger.info("Harvesting %s (%s datasets) in %d id ranges", run.portal, run.reported_count, len(ranges))
        assert run.api_url is not None
        return [
            scrapy.Request(
                action_url(run.api_url, "package_search", self._count_query(run.since, id_range)),
                callback=self.harvest_range,
                errback=self.harvest_range_failed,
                cb_kwargs={"portal_run": portal_run, "part": part, "lower": id_range.lower,
                           "upper": id_range.upper},
                meta={"handle_httpstatus_list": ERROR_STATUSES},
                # Before other portals' requests: a started portal is finished first.
                priority=1,
                dont_filter=True,
            )
            for part, id_range in enumerate(ranges)
        ]

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = ledger_for(self.crawler)
        return self._ledger

    async def harvest_range(
        self, response: Response, portal_run: dict[str, Any], part: int, lower: str | None, upper: str | None,
    ) -> AsyncIterator[Any]:
        id_range = IdRange(lower, upper)
        portal, api_url = portal_run["portal"], portal_run["api_url"]
        work = f"{portal} {id_range}"
        run = HarvestRun(portal=portal, run_timestamp=self.run_timestamp, api_url=api_url, since=portal_run["since"])
        try:
            run.reported_count = as_count(read_envelope(response, "package_search").get("count"), "count")
        except (FetchError, AttributeError):
            pass  # paging finds out what is wrong, with smaller pages if need be
        self._ranges_running[portal] = self._ranges_running.get(portal, 0) + 1
        try:
            repository = await self._read_repository(portal)
            stored = None if repository is None else {i for i in repository[1] if id_range.holds(i)}
            gather = _Gather(run, stored=stored)
            try:
                async for item in self._search(api_url, gather, id_range):
                    yield self._count(item, work)
            except FetchError as error:
                gather.fail(error)
            gather.conclude()
            await self._wait_until_processed(work)
            self.crawler.stats.inc_value("harvest/ranges_done")
        finally:
            self._ranges_running[portal] -= 1
            if not self._ranges_running[portal]:
                del self._ranges_running[portal]
                self._repository_reads.pop(portal, None)
        async for output in self._record_range(portal_run, part, run):
            yield output

    async def harvest_range_failed(self, failure: Failure) -> AsyncIterator[Any]:
        kwargs = failure.request.cb_kwargs
        error = describe_exception(failure, self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))
        id_range = IdRange(kwargs["lower"], kwargs["upper"])
        run = HarvestRun(portal=kwargs["portal_run"]["portal"], run_timestamp=self.run_timestamp)
        run.errors.append(f"{id_range}: package_search: {error}")
        async for output in self._record_range(kwargs["portal_run"], kwargs["part"], run):
            yield output

    async def _record_range(self, portal_run: dict[str, Any], part: int, run: HarvestRun) -> AsyncIterator[HarvestRun]:
        """Report one range's run; yield the portal's run if this was the last range."""
        parts = portal_run["split"]
        try:
            results = await self.ledger.record(run.portal, part, parts, ItemAdapter(run).asdict())
        except Exception as error:  # Redis gone: the portal stays unconcluded, nothing is marked deleted
            self.logger.error("Could not record range %d of %d of %s (%s); this run of the portal will stay "
                              "incomplete", part + 1, parts, run.portal, error)
            return
        if results is not None:
            yield self._finish(merge_parts(portal_run, results))

    # -- gathering ------------------------------------------------------------------------

    async def _search(
        self, api_url: str, gather: _Gather, id_range: IdRange = IdRange()
    ) -> AsyncIterator[HarvestedDataset]:
        run = gather.run
        run.method = "search"
        fq = search_filter(run.since, id_range)
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
            if error.kind == "stopped" or not id_range.whole:
                # Stopping, or one range of a split portal: package_list cannot be cut by id.
                gather.fail(FetchError(error.kind, f"{'' if id_range.whole else f'{id_range}: '}package_search "
                                       f"after {progress.seen} datasets: {error.detail}", error.status))
                return
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
                api_url, id_range.solr(), params={"fl": "id"}, page_size=self._page_size(), progress=listing
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
        stored = await self._read_repository(portal)
        if stored is None:
            return None
        last, active = stored
        if last and self.since is None and not self.full and self.method == "search":
            margin = timedelta(seconds=self.crawler.settings.getfloat("HARVEST_SINCE_MARGIN", 3600))
            run.since = solr_time(parse_since(last["run_timestamp"]) - margin)
            run.since_source = "last complete harvest"
        return active

    async def _read_repository(self, portal: str) -> tuple[dict[str, Any] | None, set[str]] | None:
        """The portal's last complete run and its stored ids that are not deleted; None
        without a repository or when it cannot be read. Ranges of one portal that run
        in this process at the same time share one read."""
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

        shared = self._repository_reads.get(portal)
        reading = shared if shared is not None else asyncio.ensure_future(asyncio.to_thread(read))
        if self._ranges_running.get(portal) and shared is None:
            self._repository_reads[portal] = reading
        try:
            return await asyncio.shield(reading)
        except Exception as exc:  # the pipeline reports an unusable MongoDB itself
            self.logger.warning("Could not read the repository for %s (%s): full harvest", portal, exc)
            return None

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(self, item: HarvestedDataset, work: str) -> HarvestedDataset:
        self._yielded[work] = self._yielded.get(work, 0) + 1
        self._work_of[id(item)] = work
        self.crawler.stats.inc_value("harvest/datasets")
        return item

    def _item_done(self, item: Any, *args: Any, **kwargs: Any) -> None:
        work = self._work_of.pop(id(item), None) if isinstance(item, HarvestedDataset) else None
        if work is None:
            return
        self._processed[work] = self._processed.get(work, 0) + 1
        event = self._drained.get(work)
        if event is not None and self._processed[work] >= self._yielded.get(work, 0):
            event.set()

    async def _wait_until_processed(self, work: str) -> None:
        """Until every dataset item of the work (a portal, or a range of one) has passed
        the pipelines (or was dropped)."""
        if self._processed.get(work, 0) >= self._yielded.get(work, 0):
            return
        event = self._drained[work] = asyncio.Event()
        await event.wait()
        del self._drained[work]

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
