"""Resource facts: for each resource of a harvested dataset, its URL, format, size and MD5.

Fills ``resource_facts`` of items that have that field (HarvestedDataset): one dict per
entry of ``raw["resources"]``, in the same order; items without the field pass through.
A dataset without resources gets ``[]``; ``raw["resources"]`` that is not a list gets
None (unknown) and a warning.

Each dict (keys always present; None means unknown or not applicable):

- ``index``, ``resource_id``: the position in ``raw["resources"]`` and the resource's id.
- ``url``: as given; ``url_normalized``: the URL fetched (ckancrawl.resources.urls).
- ``declared_format``: the resource's ``format`` as given (else its ``mimetype``).
- ``url_format_hint``: what in the URL named a format: ``"csv"`` (extension) or
  ``"format=csv"`` / ``"service=WMS"`` (query).
- ``content_type``, ``content_encoding``, ``content_length``: as the server answered
  (2xx answers only: an error page's headers do not describe the resource; no
  ``content_length`` from a 206, whose length is the part's).
- ``formats``: the canonical format from each source, most trusted first:
  ``{"magic": ..., "content_type": ..., "extension": ..., "declared": ...}``.
- ``format`` and ``format_source``: the canonical format (ckancrawl.resources.formats.
  choose_format) and which source gave it.
- ``size`` (bytes) and ``size_source``: ``"counted"`` (the whole body was read),
  ``"content-length"`` or ``"content-range"`` (the total of a ranged answer).
- ``md5``: hex MD5 of the body as served (``full`` mode); ``md5_skipped``: why there is
  none in ``full`` mode (``"too large: ..."``, ``"timeout: ..."``).
- ``method``: how the facts were read: ``"none"``, ``"head"``, ``"range"`` (HEAD refused,
  then a ``Range: bytes=0-0`` GET) or ``"get"``.
- ``status``: the final HTTP status; ``redirects``: how many were followed;
  ``final_url``: where they led, without its query (see below).
- ``error``: ``"<kind>: <detail>"`` (ckancrawl.failures kinds: ``blocked``, ``http error``,
  ``timeout``, ``dns``, ``connection lost``, ``bad url``, ``no url``...; ``stopped``
  when the crawl was stopping, see ckancrawl.shutdown, and the next run reads it).

No timestamps and nothing that changes between two reads of an unchanged resource, so
an unchanged dataset keeps equal facts from run to run (the raw repository stores a
dataset again when its facts change): that is why ``final_url`` drops the query of a
redirect's target, where signed CDN links carry expiring tokens.

The downloads go through Scrapy's downloader (``engine.download_async``), on download
slots of their own (``resource:<host>``, RESOURCE_CONCURRENCY_PER_HOST requests at once)
and with the resource download handler (ckancrawl.resources.download_handler: streaming
MD5 in constant memory, address checks on every hop). The same URL is read once per run
(facts are reused for later resources with that URL; stat ``resource_facts/reused``).

Settings:

- RESOURCE_FACTS (``"head"``): ``none`` (no network: URL and declared format only),
  ``head`` (HEAD; where HEAD is refused with 403, 405 or 501, a GET of one byte with
  ``Range: bytes=0-0``) or ``full`` (GET of the whole body: size counted and MD5).
- RESOURCE_MAX_BYTES (1 GiB): in ``full`` mode, a body larger than this is not read
  past it and not hashed; when Content-Length says so, only its first 64 KiB are read
  (for the format).
- RESOURCE_CONCURRENCY (8): resource downloads in flight at once, all hosts together,
  so they never take all of CONCURRENT_REQUESTS from the metadata crawl.
- RESOURCE_CONCURRENCY_PER_HOST (2): at once on one host.
- RESOURCE_TIMEOUT (30): seconds to wait for an answer's status line, and for the next
  bytes of a body (then retried like any download timeout).
- RESOURCE_MAX_SECONDS (1800): seconds one body may take; past it reading stops and the
  MD5 is skipped with a ``timeout`` reason (a slow drip is not retried).
- RESOURCE_ALLOW_PRIVATE (False): True, or a list of networks, lets resource downloads
  connect to non-public addresses (see ckancrawl.resources.address_guard); for tests.
- RESOURCE_HASH_IN_THREAD (True): bodies over 1 MiB are hashed in a thread of their own
  (ckancrawl.resources.streaming); False hashes on the event loop.

``RESOURCE_FACTS`` head or full needs the resource download handler in
DOWNLOAD_HANDLERS for http and https; the pipeline refuses to start without it.

Stats (``resource_facts/...``): ``datasets``, ``resources``, ``fetched``, ``reused``,
``hashed``, ``bytes_hashed``, ``error/<kind>``, ``md5_skipped/<kind>``,
``format/<NAME>``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

import scrapy
from itemadapter import ItemAdapter
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.misc import load_object
from w3lib.url import safe_url_string

from ckancrawl.failures import FetchError, describe_exception
from ckancrawl.resources.download_handler import (
    BlockedAddressError,
    ProxyNotSupportedError,
    ResourceDownloadHandler,
)
from ckancrawl.resources.formats import (
    choose_format,
    format_of_declared,
    format_of_mimetype,
    url_format_hint,
)
from ckancrawl.resources.magic import SNIFF_BYTES, sniff
from ckancrawl.resources.streaming import FETCH_META, RESULT_META, BodyResult, ResourceFetch
from ckancrawl.resources.urls import normalise_url
from ckancrawl.shutdown import is_closing, stopped

logger = logging.getLogger(__name__)

MODES = ("none", "head", "full")
#: Statuses that mean "HEAD is not allowed here": then one byte is asked with GET.
HEAD_REFUSED = (403, 405, 501)
#: Error statuses reach the pipeline after retries; 3xx are followed.
ERROR_STATUSES = list(range(400, 600))
SLOT_PREFIX = "resource:"
#: URLs whose facts are remembered within a run.
CACHE_SIZE = 4096
STATS = "resource_facts"


class ResourceFactsPipeline:
    def __init__(self, crawler: Any):
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.mode = str(settings.get("RESOURCE_FACTS", "head")).strip().lower()
        if self.mode not in MODES:
            raise ValueError(f"RESOURCE_FACTS={self.mode!r}: choose one of {', '.join(MODES)}")
        self.max_bytes = settings.getint("RESOURCE_MAX_BYTES", 1024**3)
        self.concurrency = settings.getint("RESOURCE_CONCURRENCY", 8)
        self.per_host = settings.getint("RESOURCE_CONCURRENCY_PER_HOST", 2)
        self.timeout = settings.getfloat("RESOURCE_TIMEOUT", 30.0)
        self.max_seconds = settings.getfloat("RESOURCE_MAX_SECONDS", 1800.0)
        for name, value in (
            ("RESOURCE_MAX_BYTES", self.max_bytes), ("RESOURCE_CONCURRENCY", self.concurrency),
            ("RESOURCE_CONCURRENCY_PER_HOST", self.per_host), ("RESOURCE_TIMEOUT", self.timeout),
            ("RESOURCE_MAX_SECONDS", self.max_seconds),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.mode != "none":
            _require_handler(settings)
        self._slots: asyncio.Semaphore | None = None
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._pending: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> ResourceFactsPipeline:
        return cls(crawler)

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if "resource_facts" not in adapter.field_names():
            return item
        raw = adapter.get("raw")
        resources = raw.get("resources") if isinstance(raw, dict) else None
        self.stats.inc_value(f"{STATS}/datasets")
        if resources is None:
            adapter["resource_facts"] = []
            return item
        if not isinstance(resources, list):
            logger.warning(
                "dataset %s of %s: resources is a %s, not a list; no resource facts",
                adapter.get("dataset_id"), adapter.get("portal"), type(resources).__name__,
            )
            adapter["resource_facts"] = None
            return item
        portal = adapter.get("portal")
        dataset_id = adapter.get("dataset_id")
        adapter["resource_facts"] = list(await asyncio.gather(*(
            self._facts_or_error(index, resource, portal, dataset_id) for index, resource in enumerate(resources)
        )))
        return item

    async def _facts_or_error(self, index: int, resource: Any, portal: str | None, dataset_id: str | None) -> dict[str, Any]:
        """A bug here must not cost the dataset its place in the repository."""
        try:
            return await self.facts(index, resource, portal, dataset_id)
        except Exception as exc:
            logger.exception("resource %d of dataset %s (%s): facts failed", index, dataset_id, portal)
            facts = self._offline_facts(index, resource, portal, dataset_id)[0]
            facts["error"] = str(describe_exception(exc))
            return facts

    # -- one resource ------------------------------------------------------------------

    def _offline_facts(self, index: int, resource: Any, portal: str | None,
                       dataset_id: str | None) -> tuple[dict[str, Any], dict[str, str | None]]:
        """What the resource dict alone tells (every key present), and the format evidence."""
        resource = resource if isinstance(resource, dict) else {"url": resource}
        given = resource.get("url")
        normalized, url_error = normalise_url(given, base=_upload_base(resource, portal, dataset_id))
        declared = resource.get("format") or resource.get("mimetype") or None
        hint_format, hint = url_format_hint(normalized or (given if isinstance(given, str) else None))
        facts: dict[str, Any] = {
            "index": index,
            "resource_id": resource.get("id") if isinstance(resource.get("id"), str) else None,
            "url": given,
            "url_normalized": normalized,
            "declared_format": declared if isinstance(declared, str) else None,
            "url_format_hint": hint,
            **_public(_empty_network_facts("none" if self.mode == "none" and not url_error else None)),
            "formats": {"magic": None, "content_type": None, "extension": hint_format,
                        "declared": format_of_declared(declared)},
            "format": None,
            "format_source": None,
        }
        facts["error"] = url_error
        facts["format"], facts["format_source"] = choose_format(facts["formats"])
        return facts, facts["formats"]

    async def facts(self, index: int, resource: Any, portal: str | None = None,
                    dataset_id: str | None = None) -> dict[str, Any]:
        self.stats.inc_value(f"{STATS}/resources")
        facts, evidence = self._offline_facts(index, resource, portal, dataset_id)
        normalized = facts["url_normalized"]
        if self.mode != "none" and normalized and not facts["error"]:
            network = await self._network_facts(normalized)
            facts.update(_public(network))
            evidence["magic"] = network["_magic"]
            evidence["content_type"] = network["_content_type_format"]
        facts["format"], facts["format_source"] = choose_format(evidence)
        if facts["error"]:
            self.stats.inc_value(f"{STATS}/error/{facts['error'].split(':', 1)[0]}")
        if facts["md5_skipped"]:
            self.stats.inc_value(f"{STATS}/md5_skipped/{facts['md5_skipped'].split(':', 1)[0]}")
        self.stats.inc_value(f"{STATS}/format/{facts['format'] or 'unknown'}")
        return facts

    async def _network_facts(self, url: str) -> dict[str, Any]:
        """The facts a server tells about ``url``, read once per run (in flight or cached)."""
        key = (self.mode, url)
        if key in self._cache:
            self._cache.move_to_end(key)
            self.stats.inc_value(f"{STATS}/reused")
            return self._cache[key]
        if key in self._pending:
            self.stats.inc_value(f"{STATS}/reused")
            return await asyncio.shield(self._pending[key])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            found = await self._read(url)
            future.set_result(found)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiter may not exist
            raise
        finally:
            del self._pending[key]
        self._cache[key] = found
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return found

    async def _read(self, url: str) -> dict[str, Any]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            if self.mode == "head":
                return await self._read_head(url)
            return await self._read_full(url)

    async def _read_head(self, url: str) -> dict[str, Any]:
        found = _empty_network_facts("head")
        try:
            response = await self._download(url, "HEAD", ResourceFetch(hash=False, max_bytes=0))
            if response.status in HEAD_REFUSED:
                found["method"] = "range"
                probe = ResourceFetch(hash=False, max_bytes=self.max_bytes,
                                      read_limit=min(SNIFF_BYTES, self.max_bytes), max_seconds=self.max_seconds)
                response = await self._download(url, "GET", probe, {"Range": "bytes=0-0"})
        except FetchError as error:
            found["error"] = str(error)
            return found
        body = _body(response)
        empty = response.status == 416 and re.fullmatch(r"bytes \*/\d+", body.content_range or "")
        if empty:
            # Not even byte 0 exists: an empty file ("bytes */0"), read as a ranged answer.
            response = response.replace(status=206)
        self._describe_answer(found, response)
        if empty:
            found["status"] = 416
        if found["error"]:
            return found
        if response.status == 206:
            total = (body.content_range or "").rpartition("/")[2]
            if total.isdigit():
                found["size"], found["size_source"] = int(total), "content-range"
        elif found["content_length"] is not None:
            found["size"], found["size_source"] = found["content_length"], "content-length"
        if response.status == 200 and found["method"] == "range":
            found["_magic"] = _magic(body)  # the server ignored Range: these are the file's first bytes
        return found

    async def _read_full(self, url: str) -> dict[str, Any]:
        found = _empty_network_facts("get")
        fetch = ResourceFetch(hash=True, max_bytes=self.max_bytes, max_seconds=self.max_seconds)
        try:
            response = await self._download(url, "GET", fetch)
        except FetchError as error:
            found["error"] = str(error)
            return found
        self._describe_answer(found, response)
        if found["error"]:
            return found
        body = _body(response)
        found["_magic"] = _magic(body)
        if body.complete:
            found["size"], found["size_source"] = body.received, "counted"
            found["md5"] = body.md5
            self.stats.inc_value(f"{STATS}/hashed")
            self.stats.inc_value(f"{STATS}/bytes_hashed", body.received)
        else:
            if found["content_length"] is not None:
                found["size"], found["size_source"] = found["content_length"], "content-length"
            found["md5_skipped"] = body.stopped or "error: the body was not read to its end"
        return found

    def _describe_answer(self, found: dict[str, Any], response: Response) -> None:
        """Status, redirects and headers; an error for 4xx/5xx (whose headers describe an
        error page, not the resource)."""
        body = _body(response)
        redirects = len(response.meta.get("redirect_urls", []))
        # After a redirect the query often holds an expiring token (signed CDN URLs):
        # kept, it would make an unchanged resource look changed on every run.
        final_url = urlsplit(response.url)._replace(query="").geturl() if redirects else response.url
        found["status"] = response.status
        found["final_url"] = final_url
        found["redirects"] = redirects
        if response.status >= 400:
            found["error"] = str(FetchError("http error", f"HTTP {response.status} at {final_url}", response.status))
            return
        found["content_type"] = body.content_type
        found["content_encoding"] = body.content_encoding
        # A 206's Content-Length is that of the part, not of the resource.
        found["content_length"] = body.content_length if response.status != 206 else None
        found["_content_type_format"] = format_of_mimetype(body.content_type)

    async def _download(self, url: str, method: str, fetch: ResourceFetch,
                        headers: dict[str, str] | None = None) -> Response:
        if is_closing(self.crawler):
            raise stopped(url)
        self.stats.inc_value(f"{STATS}/fetched")
        try:
            request = scrapy.Request(
                url,
                method=method,
                headers={"Accept-Encoding": "identity", **(headers or {})},
                meta={
                    FETCH_META: fetch,
                    "download_slot": self._slot_for(url),
                    "download_timeout": self.timeout,
                    "handle_httpstatus_list": ERROR_STATUSES,
                },
                dont_filter=True,
            )
        except (ValueError, TypeError) as exc:
            raise FetchError("bad url", f"{url!r} is not a usable URL ({exc})") from None
        try:
            return await self.crawler.engine.download_async(request)
        except BlockedAddressError as exc:
            raise FetchError("blocked", str(exc)) from None
        except ProxyNotSupportedError as exc:
            raise FetchError("error", str(exc)) from None
        except IgnoreRequest as exc:
            text = str(exc)
            kind = "redirect loop" if "redirect" in text.lower() else "error"
            raise FetchError(kind, text or "the request was dropped by a downloader middleware") from None
        except Exception as exc:  # every download failure becomes a reason
            raise describe_exception(exc, timeout=self.timeout) from None

    def _slot_for(self, url: str) -> str:
        """A download slot per host, apart from the metadata crawl's, with its own concurrency."""
        key = SLOT_PREFIX + (urlsplit(url).hostname or "")
        downloader = self.crawler.engine.downloader
        downloader.per_slot_settings.setdefault(key, {"concurrency": self.per_host})
        return key


def _require_handler(settings: Any) -> None:
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    for scheme in ("http", "https"):
        path = handlers.get(scheme)
        handler = load_object(path) if isinstance(path, str) else path
        if not (isinstance(handler, type) and issubclass(handler, ResourceDownloadHandler)):
            raise ValueError(
                f"RESOURCE_FACTS={settings.get('RESOURCE_FACTS')!r} needs the resource download handler "
                f"for {scheme} (streaming MD5, address checks): set DOWNLOAD_HANDLERS = "
                '{"http": "ckancrawl.resources.download_handler.ResourceDownloadHandler", '
                '"https": "ckancrawl.resources.download_handler.ResourceDownloadHandler"}, '
                "or RESOURCE_FACTS=none"
            )


def _empty_network_facts(method: str | None) -> dict[str, Any]:
    return {
        "method": method,
        "status": None,
        "final_url": None,
        "redirects": None,
        "content_type": None,
        "content_encoding": None,
        "content_length": None,
        "size": None,
        "size_source": None,
        "md5": None,
        "md5_skipped": None,
        "error": None,
        "_magic": None,
        "_content_type_format": None,
    }


def _public(found: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in found.items() if not key.startswith("_")}


def _body(response: Response) -> BodyResult:
    result = response.meta.get(RESULT_META)
    return result if isinstance(result, BodyResult) else BodyResult()


def _magic(body: BodyResult) -> str | None:
    return sniff(body.head) if body.head else None


def _upload_base(resource: dict[str, Any], portal: str | None, dataset_id: str | None) -> str | None:
    """Where a relative URL points: CKAN serves uploads at
    ``<portal>/dataset/<id>/resource/<resource id>/download/<file name>``."""
    if not portal:
        return None
    root = portal.rstrip("/") + "/"
    if resource.get("url_type") == "upload" and dataset_id and isinstance(resource.get("id"), str):
        return safe_url_string(f"{root}dataset/{dataset_id}/resource/{resource['id']}/download/")
    return root
