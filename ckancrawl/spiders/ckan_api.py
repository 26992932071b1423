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

import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urljoin

import scrapy
from scrapy.http import Response

from ckancrawl.failures import FetchError, decode_json, describe_exception, response_error

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

    @property
    def run_timestamp(self) -> str:
        """One timestamp per run; a resumed run (JOBDIR) keeps the one it started with."""
        if self._run_timestamp is None:
            state = getattr(self, "state", None)
            stored = state.get("run_timestamp") if isinstance(state, dict) else None
            self._run_timestamp = stored or utc_now_iso()
        state = getattr(self, "state", None)
        if isinstance(state, dict):
            state["run_timestamp"] = self._run_timestamp
        return self._run_timestamp

    # -- fetching ------------------------------------------------------------------

    async def fetch(self, url: str, **meta: Any) -> Response:
        """GET through Scrapy's downloader; raise FetchError on any failure."""
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

    # -- paging ----------------------------------------------------------------------

    async def search_datasets(
        self, api_url: str, fq: str, rows: int = 100, params: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every dataset matching ``fq``, once, even if the portal changes while paged.

        Keyset paging: sorted by ``id`` and each page asks for ids after the last one
        seen. Unlike start/rows paging, a dataset deleted or added before the current
        position cannot shift another one out of view or into view twice.
        """
        last_id: str | None = None
        seen: set[str] = set()
        reported: int | None = None
        while True:
            page_fq = fq if last_id is None else f'{fq} +id:{{"{last_id}" TO *]'
            query = {"q": "*:*", "fq": page_fq, "sort": "id asc", "rows": rows, **(params or {})}
            result = await self.call_action(api_url, "package_search", query)
            if not isinstance(result, dict) or not isinstance(result.get("results"), list):
                raise FetchError("wrong shape", "package_search result has no results list")
            if reported is None:
                reported = as_count(result.get("count"), "package_search count")
            page = [ds for ds in result["results"] if isinstance(ds, dict) and ds.get("id")]
            for dataset in page:
                if dataset["id"] not in seen:
                    seen.add(dataset["id"])
                    yield dataset
            if len(result["results"]) < rows or not page:
                break
            last_id = max(str(ds["id"]) for ds in page)
        self.crawler.stats.set_value(f"{self.name}/search/reported_count", reported)
        self.crawler.stats.set_value(f"{self.name}/search/datasets_seen", len(seen))
        if reported is not None and len(seen) != reported:
            self.logger.warning(
                "package_search reported %d datasets at %s but paging found %d "
                "(datasets were added or removed during the crawl)",
                reported, api_url, len(seen),
            )

    async def count_names(self, api_url: str, action: str) -> int:
        """Count what a name list action (organization_list, ...) holds, past any cap.

        CKAN 2.9+ (and 2.7.10, 2.8.7) caps these lists at
        ``ckan.group_and_organization_list_max`` (1000 by default) and pages them with
        limit/offset; before 2.5 both are ignored and everything comes back at once.
        CKAN 2.9.0 and 2.9.1 answer 500 to any ``limit``, so paging then goes by
        ``offset`` alone. A short page whose size is a round number may be a lower cap,
        so the next page is checked too; a page that repeats the first one means offset
        is ignored and the first page was the whole list.
        """
        limit: int | None = self.list_page_size
        try:
            first = await self._name_page(api_url, action, limit, 0)
        except FetchError as error:
            if error.kind not in ("ckan error", "http error") or (error.status or 0) < 500:
                raise
            limit = None
            first = await self._name_page(api_url, action, None, 0)
        names = set(first)
        page = first
        while page and len(page) % 25 == 0 and (limit is None or len(page) <= limit):
            page = await self._name_page(api_url, action, limit, len(names))
            if page[:1] == first[:1]:
                break
            fresh = set(page) - names
            if not fresh:
                break
            names |= fresh
        return len(names)

    async def _name_page(self, api_url: str, action: str, limit: int | None, offset: int) -> list[str]:
        params: dict[str, Any] = {"offset": offset} if offset or limit is None else {}
        if limit is not None:
            params["limit"] = limit
        page = await self.call_action(api_url, action, params or None)
        if not isinstance(page, list):
            raise FetchError("wrong shape", f"{action} answered a {type(page).__name__}, not a list")
        return [name if isinstance(name, str) else json.dumps(name, sort_keys=True) for name in page]
