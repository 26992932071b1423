"""The CKAN Action API base shared by every spider.

It knows how to build ``/api/3/action/<name>`` URLs, read the ``{success, result,
error}`` envelope, page through ``package_search`` and the name lists, and turn every
failure into a :class:`~ckancrawl.failures.FetchError` with a reason a person
understands. All reads go through Scrapy's downloader (``engine.download_async``), so
AutoThrottle, retries, redirects, the size cap and per-site concurrency apply to them.

Spider arguments read here:
- ``run_timestamp``: reuse the timestamp of an interrupted run (ISO 8601, UTC). Without
  it, a resumed JOBDIR run keeps its original timestamp from the spider state.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import scrapy
from scrapy.http import Response

from ckancrawl.failures import FetchError, decode_json, describe_exception, response_error
from ckancrawl.run_state import RunState
from ckancrawl.shutdown import is_closing, stopped

#: Error statuses reach the spider (after retries) so their reasons can be recorded;
#: 3xx stay out of this list so that redirects are still followed.
ERROR_STATUSES = list(range(400, 600))

#: The two places CKAN serves the Action API, newest first.
API_PATHS = ("api/3/action/", "api/action/")

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:?00)?$")


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def action_url(api_url: str, action: str, params: dict[str, Any] | None = None) -> str:
    """``api_url`` ends with ``/action/``; list and dict parameters are sent as JSON."""
    url = urljoin(api_url, action)
    if params:
        encoded = {
            key: json.dumps(value) if isinstance(value, (list, dict)) else value
            for key, value in params.items()
        }
        url += "?" + urlencode(encoded)
    return url


def read_envelope(response: Response, action: str) -> Any:
    """Return ``result`` from a CKAN answer or raise FetchError saying what was wrong."""
    if response.status == 429:
        raise response_error(response)
    try:
        data = decode_json(response)
    except FetchError:
        if response.status >= 400:
            raise response_error(response) from None
        raise
    if not isinstance(data, dict) or "success" not in data:
        shape = type(data).__name__
        raise FetchError(
            "wrong shape",
            f"{action} answered JSON ({shape}) without CKAN's success/result envelope at {response.url}",
        )
    if data["success"] is not True:
        error = data.get("error")
        raise FetchError(
            "ckan error", f"{action}: {_error_message(error)} (HTTP {response.status})", response.status
        )
    if "result" not in data:
        raise FetchError("wrong shape", f"{action} answered success without a result at {response.url}")
    return data["result"]


def _error_message(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:300] or "unspecified error"
    kind = error.get("__type") or "Error"
    message = error.get("message")
    if not message:
        # Validation errors carry one list of messages per field.
        fields = {k: v for k, v in error.items() if k != "__type"}
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or "no message"
    return f"{kind}: {str(message)[:300]}"


def as_count(value: Any, what: str) -> int:
    """A count as an int; numeric strings are accepted, anything else is wrong shape."""
    if isinstance(value, bool):
        raise FetchError("wrong shape", f"{what} is a boolean, not a count")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise FetchError("wrong shape", f"{what} is {json.dumps(value)[:80]}, not a count")


#: Failures that say the host itself cannot be talked to: no other path on it is tried.
HOST_FAILURES = {"dns", "connection refused", "tls", "bad url", "blocked"}
#: Failures of the network rather than of the answer.
NETWORK_FAILURES = HOST_FAILURES | {"timeout", "connection lost", "redirect loop", "too large", "rate limited"}


def host_of(url: str | None) -> str:
    try:
        return (urlsplit(url or "").netloc or "").lower()
    except ValueError:
        return ""


def solr_quoted(value: str) -> str:
    """A Solr phrase for ``value``: quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_overload(error: FetchError) -> bool:
    """A failure that a smaller page may avoid: server errors, timeouts, cut answers,
    answers past DOWNLOAD_MAXSIZE."""
    if error.kind in ("timeout", "connection lost", "truncated json", "too large"):
        return True
    return error.kind in ("http error", "ckan error") and (error.status or 0) >= 500


@dataclass
class PageSize:
    """Rows per page: halved when a page fails with an overload (see :func:`is_overload`),
    doubled again after ``grow_after`` good pages in a row, within [minimum, maximum]."""

    maximum: int = 1000
    minimum: int = 10
    grow_after: int = 3
    current: int = 0
    _good: int = 0

    def __post_init__(self) -> None:
        self.minimum = max(1, min(self.minimum, self.maximum))
        self.current = self.current or self.maximum

    def shrink(self) -> bool:
        """Halve the page; False when it is already at the minimum."""
        if self.current <= self.minimum:
            return False
        self.current = max(self.minimum, self.current // 2)
        self._good = 0
        return True

    def succeeded(self) -> None:
        self._good += 1
        if self._good >= self.grow_after and self.current < self.maximum:
            self.current = min(self.maximum, self.current * 2)
            self._good = 0


@dataclass
class SearchProgress:
    """How far :meth:`CkanApiSpider.search_datasets` got; filled while it pages."""

    #: ``count`` of the first page: what matched when paging began.
    reported: int | None = None
    #: Datasets yielded.
    seen: int = 0
    pages: int = 0
    #: Pages asked again with fewer rows.
    shrinks: int = 0
    #: The highest id paged so far (paging resumes after it).
    last_id: str | None = None
    #: True once the last page was read.
    complete: bool = False


class CkanApiSpider(scrapy.Spider):
    """Base of all ckancrawl spiders: run timestamp, argument parsing, Action API calls."""

    #: Page size for the name lists (organization_list, group_list, package_list).
    list_page_size = 1000

    def __init__(self, *args: Any, run_timestamp: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if run_timestamp is not None and not _TIMESTAMP.match(run_timestamp):
            raise ValueError(
                f"run_timestamp={run_timestamp!r} is not an ISO 8601 UTC time such as 2026-11-22T03:00:00Z"
            )
        self._run_timestamp = run_timestamp
        #: The timestamp this run was told to use (argument, or the job directory's on
        #: resume); None when it picked its own.
        self.given_run_timestamp = run_timestamp

    @property
    def run_timestamp(self) -> str:
        """One timestamp per run; a resumed run (JOBDIR) keeps the one it started with.

        Scrapy saves the spider state only when the spider closes, which a killed
        process never does; so the timestamp is also written to ``JOBDIR/run_timestamp``
        (see :mod:`ckancrawl.run_state`) the first time it is asked for.
        """
        if self._run_timestamp is None:
            state = getattr(self, "state", None)
            stored = state.get("run_timestamp") if isinstance(state, dict) else None
            self._run_timestamp = self._run_state.stored_timestamp() or stored or utc_now_iso()
        self._run_state.keep_timestamp(self._run_timestamp)
        state = getattr(self, "state", None)
        if isinstance(state, dict):
            state["run_timestamp"] = self._run_timestamp
        return self._run_timestamp

    @property
    def _run_state(self) -> RunState:
        kept = self.__dict__.get("_run_state_kept")
        if kept is None:
            crawler = getattr(self, "crawler", None)
            kept = self.__dict__["_run_state_kept"] = RunState(crawler.settings.get("JOBDIR") if crawler else None)
        return kept

    @property
    def resumed(self) -> bool:
        """True when this process continues a job that an earlier process started."""
        return self._run_state.resumed

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> CkanApiSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # Fixed (and kept in JOBDIR) before any request: a run killed at any later
        # moment resumes with this timestamp; an unwritable JOBDIR fails here.
        spider.given_run_timestamp = spider.given_run_timestamp or spider._run_state.stored_timestamp()
        spider.run_timestamp
        if spider.resumed:
            spider.logger.info("Resuming the run of %s from the job directory %s",
                               spider.run_timestamp, crawler.settings.get("JOBDIR"))
        return spider

    # -- fetching ------------------------------------------------------------------

    #: Whether :meth:`fetch` refuses to start once the crawl is closing. Scrapy closes
    #: only when every callback in progress has returned, and a callback that pages a
    #: whole portal would keep a cancelled job (scrapyd cancel, Ctrl-C) running for its
    #: whole length. Off for spiders whose callbacks are short (a site's probe ends
    #: with real values rather than "stopped" ones).
    stop_fetching_when_closing = False

    @property
    def closing(self) -> bool:
        """True once the crawl was told to stop (signal, scrapyd cancel, CloseSpider)."""
        return is_closing(getattr(self, "crawler", None))

    async def fetch(self, url: str, **meta: Any) -> Response:
        """GET through Scrapy's downloader; raise FetchError on any failure."""
        if self.stop_fetching_when_closing and self.closing:
            raise stopped(url)
        try:
            request = scrapy.Request(
                url, meta={"handle_httpstatus_list": ERROR_STATUSES, **meta}, dont_filter=True
            )
        except (ValueError, TypeError) as exc:
            raise FetchError("bad url", f"{url!r} is not a usable URL ({exc})") from None
        try:
            return await self.crawler.engine.download_async(request)
        except Exception as exc:  # every download failure becomes a reason
            raise describe_exception(exc, timeout=self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT")) from None

    async def call_action(self, api_url: str, action: str, params: dict[str, Any] | None = None) -> Any:
        response = await self.fetch(action_url(api_url, action, params))
        return read_envelope(response, action)

    # -- finding the API ------------------------------------------------------------

    async def find_api(
        self, roots: list[str], dead_hosts: set[str]
    ) -> tuple[str | None, dict[str, Any] | FetchError | None, list[FetchError]]:
        """The first install root and path where status_show answers CKAN's envelope.

        An envelope with ``success: false`` (status_show switched off) still proves the
        API is there. Returns (api_url, status_show result or its error, failed attempts).
        """
        attempts: list[FetchError] = []
        for root in roots:
            for path in API_PATHS:
                if host_of(root) in dead_hosts:
                    break
                try:
                    response = await self.fetch(action_url(root + path, "status_show"))
                except FetchError as error:
                    attempts.append(error)
                    if error.kind in NETWORK_FAILURES:
                        dead_hosts.add(host_of(root))
                    continue
                api_url = response.url.split("status_show", 1)[0]
                try:
                    result = read_envelope(response, "status_show")
                except FetchError as error:
                    if error.kind == "ckan error":
                        return api_url, error, attempts
                    attempts.append(error)
                    continue
                if not isinstance(result, dict):
                    return api_url, FetchError("wrong shape", "status_show result is not an object"), attempts
                return api_url, result, attempts
        return None, None, attempts

    @staticmethod
    def no_api_reason(attempts: list[FetchError], home_error: FetchError | None) -> FetchError:
        """Why no Action API was found: the crawl stopping, a network failure if there
        was one, a server error when every answer was one, else "not a ckan site" with
        what was tried."""
        halted = [e for e in attempts if e.kind == "stopped"]
        if halted:
            return halted[0]
        network = [e for e in ([home_error] if home_error else []) + attempts if e.kind in NETWORK_FAILURES]
        if network:
            return network[0]
        if attempts and all(e.kind == "http error" and (e.status or 0) >= 500 for e in attempts):
            return attempts[0]
        tried = "; ".join(str(e) for e in attempts[:4]) or "nothing could be tried"
        return FetchError("not a ckan site", f"no CKAN Action API answered ({tried})")

    # -- paging ----------------------------------------------------------------------

    async def search_datasets(
        self,
        api_url: str,
        fq: str,
        rows: int = 100,
        params: dict[str, Any] | None = None,
        *,
        page_size: PageSize | None = None,
        progress: SearchProgress | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every dataset matching ``fq``, once, even if the portal changes while paged.

        Keyset paging: sorted by ``id`` and each page asks for ids after the last one
        seen. Unlike start/rows paging, a dataset deleted or added before the current
        position cannot shift another one out of view or into view twice. Each page's
        ``count`` is what is left after the last id, so a portal whose ``rows`` maximum
        is below the page size asked for (``ckan.search.rows_max``) is still read to
        the end.

        ``page_size`` (default: a fixed ``rows``) is halved when a page fails with a
        server error, a timeout or a cut answer, and grows back after good pages.
        ``progress`` is filled as pages come (``complete`` at the end).
        """
        page_size = page_size or PageSize(maximum=rows, minimum=rows)
        progress = progress if progress is not None else SearchProgress()
        seen: set[str] = set()

        def query(after: str | None) -> dict[str, Any]:
            page_fq = fq if after is None else f"{fq} +id:{{{solr_quoted(after)} TO *]"
            asked = {"q": "*:*", "fq": page_fq.strip(), "sort": "id asc", "rows": page_size.current, **(params or {})}
            if not asked["fq"]:
                del asked["fq"]
            return asked

        # The next page is asked for before this one's datasets are handed out, so the
        # portal works on it while they are processed.
        prefetched: asyncio.Future[Any] | None = None
        try:
            while True:
                try:
                    if prefetched is not None:
                        result = await prefetched
                    else:
                        result = await self.call_action(api_url, "package_search", query(progress.last_id))
                except FetchError as error:
                    prefetched = None
                    if is_overload(error) and page_size.shrink():
                        progress.shrinks += 1
                        self.logger.warning(
                            "package_search page failed at %s (%s); asking again with %d rows",
                            api_url, error, page_size.current,
                        )
                        continue
                    raise
                prefetched = None
                page_size.succeeded()
                if not isinstance(result, dict) or not isinstance(result.get("results"), list):
                    raise FetchError("wrong shape", "package_search result has no results list")
                remaining = as_count(result.get("count"), "package_search count")
                if progress.reported is None:
                    progress.reported = remaining
                progress.pages += 1
                page = [ds for ds in result["results"] if isinstance(ds, dict) and isinstance(ds.get("id"), str)]
                if progress.last_id is not None and any(ds["id"] <= progress.last_id for ds in page):
                    raise FetchError(
                        "wrong shape",
                        f"package_search at {api_url} ignores the id range filter (a page repeats earlier ids)",
                    )
                last_page = len(page) >= remaining
                if not last_page:
                    if not page:
                        raise FetchError(
                            "wrong shape",
                            f"package_search at {api_url} says {remaining} more datasets but sent none",
                        )
                    progress.last_id = max(ds["id"] for ds in page)
                    prefetched = asyncio.ensure_future(
                        self.call_action(api_url, "package_search", query(progress.last_id)))
                for dataset in page:
                    if dataset["id"] not in seen:
                        seen.add(dataset["id"])
                        progress.seen += 1
                        yield dataset
                if last_page:
                    break
        finally:
            if prefetched is not None:
                prefetched.cancel()
        progress.complete = True
        self.crawler.stats.set_value(f"{self.name}/search/reported_count", progress.reported)
        self.crawler.stats.set_value(f"{self.name}/search/datasets_seen", len(seen))
        if progress.reported is not None and len(seen) != progress.reported:
            self.logger.warning(
                "package_search reported %d datasets at %s but paging found %d "
                "(datasets were added or removed during the crawl)",
                progress.reported, api_url, len(seen),
            )

    async def list_names(self, api_url: str, action: str) -> list[str]:
        """Every name a list action (package_list, organization_list, ...) holds, past any cap.

        CKAN 2.9+ (and 2.7.10, 2.8.7) caps organization_list and group_list at
        ``ckan.group_and_organization_list_max`` (1000 by default) and pages them with
        limit/offset; before 2.5 both are ignored and everything comes back at once.
        CKAN 2.9.0 and 2.9.1 answer 500 to any ``limit``, so paging then goes by
        ``offset`` alone. package_list pages with limit/offset and has no cap. A short
        page whose size is a round number may be a lower cap, so the next page is
        checked too; a page that repeats the first one means offset is ignored and the
        first page was the whole list. Names come back in the portal's order, once.
        """
        limit: int | None = self.list_page_size
        try:
            first = await self._name_page(api_url, action, limit, 0)
        except FetchError as error:
            if error.kind not in ("ckan error", "http error") or (error.status or 0) < 500:
                raise
            limit = None
            first = await self._name_page(api_url, action, None, 0)
        names = dict.fromkeys(first)
        page = first
        while page and len(page) % 25 == 0 and (limit is None or len(page) <= limit):
            page = await self._name_page(api_url, action, limit, len(names))
            if page[:1] == first[:1]:
                break
            fresh = [name for name in page if name not in names]
            if not fresh:
                break
            names.update(dict.fromkeys(fresh))
        return list(names)

    async def count_names(self, api_url: str, action: str) -> int:
        """How many names a list action holds, past any cap (see :meth:`list_names`)."""
        return len(await self.list_names(api_url, action))

    async def _name_page(self, api_url: str, action: str, limit: int | None, offset: int) -> list[str]:
        params: dict[str, Any] = {"offset": offset} if offset or limit is None else {}
        if limit is not None:
            params["limit"] = limit
        page = await self.call_action(api_url, action, params or None)
        if not isinstance(page, list):
            raise FetchError("wrong shape", f"{action} answered a {type(page).__name__}, not a list")
        return [name if isinstance(name, str) else json.dumps(name, sort_keys=True) for name in page]
