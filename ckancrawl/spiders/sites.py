"""``sites``: a snapshot of every CKAN site listed in the catalog.

Spider arguments (one source of sites; the catalog is the default):
- ``catalog=URL``: read ``site`` datasets from that catalog (else ``CATALOG_URL``).
- ``urls=PATH``: one site URL per line; ``#`` starts a comment.
- ``url=URL``: a single site.
- ``run_timestamp=ISO8601``: see :class:`~ckancrawl.spiders.ckan_api.CkanApiSpider`.

Each site gets one :class:`~ckancrawl.items.SiteSnapshot`: the home page is fetched
(following redirects, which reveals moved domains and sub-path installs), the Action
API is looked for under each possible install root, then ``status_show``, the dataset
count and the organization and group counts are read side by side.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from ckancrawl.failures import FetchError, describe_exception
from ckancrawl.geocoder import Geocoder
from ckancrawl.items import SiteSnapshot
from ckancrawl.rendering import render_if_needed
from ckancrawl.site_profile import country_name, country_of, page_facts, site_type_of
from ckancrawl.site_urls import install_roots, normalize_site_url, site_url_from_dataset, usable_url
from ckancrawl.spiders.catalog import CatalogSpider
from ckancrawl.spiders.ckan_api import (
    ERROR_STATUSES,
    HOST_FAILURES,
    as_count,
    host_of,
)
from ckancrawl.status_show import normalize_extensions, text_field


@dataclass
class SiteTarget:
    """A site to probe, as found in the catalog, a file or an argument."""

    site: str
    source: str
    listed_url: str | None
    catalog_dataset: str | None = None
    catalog_dataset_id: str | None = None
    #: The catalog's free-text location of the site, if any (for geocoding).
    catalog_location: str | None = None
    #: Set when the listing itself is unusable (no URL, not a URL).
    failure: FetchError | None = None

    def snapshot(self, run_timestamp: str) -> SiteSnapshot:
        return SiteSnapshot(
            site=self.site,
            run_timestamp=run_timestamp,
            source=self.source,
            listed_url=self.listed_url,
            catalog_dataset=self.catalog_dataset,
            catalog_dataset_id=self.catalog_dataset_id,
            failure=str(self.failure) if self.failure else None,
        )


class SitesSpider(CatalogSpider):
    name = "sites"
    dataset_type = "site"

    def __init__(self, *args: Any, urls: str | None = None, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        given = [name for name, value in (("catalog", self._catalog_arg), ("urls", urls), ("url", url)) if value]
        if len(given) > 1:
            raise ValueError(f"give only one of -a catalog, -a urls, -a url (got {', '.join(given)})")
        if urls is not None and not Path(urls).is_file():
            raise ValueError(f"urls={urls!r}: no such file; give a text file with one site URL per line")
        if url is not None and not usable_url(url):
            raise ValueError(f"url={url!r} is not an http(s) URL")
        self.urls_file = urls
        self.single_url = url
        self.geocoder: Geocoder | None = None

    # -- what to probe -------------------------------------------------------------

    async def targets(self) -> AsyncIterator[SiteTarget]:
        seen: set[str] = set()
        async for target in self._listed_targets():
            if target.site in seen:
                self.crawler.stats.inc_value("sites/duplicate_listing")
                continue
            seen.add(target.site)
            yield target

    async def _listed_targets(self) -> AsyncIterator[SiteTarget]:
        if self.single_url:
            yield self._target_from_url(self.single_url, "url")
        elif self.urls_file:
            for line in Path(self.urls_file).read_text(encoding="utf-8").splitlines():
                text = line.split("#", 1)[0].strip()
                if text:
                    yield self._target_from_url(text, "urls")
        else:
            async for dataset in self.catalog_datasets():
                yield self._target_from_dataset(dataset)

    @staticmethod
    def _target_from_url(text: str, source: str) -> SiteTarget:
        url = usable_url(text)
        if url is None:
            return SiteTarget(text, source, text, failure=FetchError("bad url", f"{text!r} is not an http(s) URL"))
        return SiteTarget(normalize_site_url(url), source, url)

    @staticmethod
    def _target_from_dataset(dataset: dict[str, Any]) -> SiteTarget:
        name = str(dataset.get("name") or dataset.get("id"))
        url = site_url_from_dataset(dataset)
        location = dataset.get("location")
        target = SiteTarget(
            name, "catalog", url, name, dataset.get("id"),
            catalog_location=location.strip() if isinstance(location, str) and location.strip() else None,
        )
        if url is None:
            target.failure = FetchError(
                "no url",
                "the catalog dataset has no usable URL in url, resources, extras "
                "(website, homepage, site_url, portal_url) or notes",
            )
        return target

    async def start(self) -> AsyncIterator[Any]:
        self.geocoder = Geocoder.from_spider(self)
        async for target in self.targets():
            if target.failure:
                yield self._finish(target.snapshot(self.run_timestamp))
                continue
            yield scrapy.Request(
                target.listed_url,
                callback=self.probe_site,
                errback=self.probe_site_without_home,
                cb_kwargs={"target": target},
                meta={"handle_httpstatus_list": ERROR_STATUSES},
                dont_filter=True,
            )

    # -- probing ---------------------------------------------------------------------

    async def probe_site(self, response: Response, target: SiteTarget) -> AsyncIterator[SiteSnapshot]:
        yield await self.measure(target, home=response, home_error=None)

    async def probe_site_without_home(self, failure: Failure) -> AsyncIterator[SiteSnapshot]:
        target = failure.request.cb_kwargs["target"]
        home_error = describe_exception(failure, self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT"))
        yield await self.measure(target, home=None, home_error=home_error)

    async def measure(self, target: SiteTarget, home: Response | None, home_error: FetchError | None) -> SiteSnapshot:
        snapshot = target.snapshot(self.run_timestamp)
        snapshot.home_url = home.url if home is not None else None
        profiling = asyncio.ensure_future(self._profile(snapshot, target, home))
        if home_error is not None:
            snapshot.errors["home_page"] = str(home_error)
        elif home is not None and home.status >= 400:
            snapshot.errors["home_page"] = f"http error: HTTP {home.status} at {home.url}"
        roots = install_roots(home.url) if home is not None else []
        roots += install_roots(target.listed_url)
        dead_hosts = set()
        if home_error is not None and home_error.kind in HOST_FAILURES:
            dead_hosts.add(host_of(target.listed_url))
        api_url, status, attempts = await self.find_api(list(dict.fromkeys(roots)), dead_hosts)
        if api_url is None:
            snapshot.failure = str(self.no_api_reason(attempts, home_error))
            await profiling
            return self._finish(snapshot)
        snapshot.api_url = api_url
        if isinstance(status, FetchError):
            snapshot.errors["status_show"] = str(status)
        else:
            self._read_status(snapshot, status)
        await asyncio.gather(
            self._measure(snapshot, "num_datasets", "package_list", self._dataset_count(snapshot, api_url)),
            self._measure(
                snapshot, "num_organizations", "organization_list", self.count_names(api_url, "organization_list")
            ),
            self._measure(snapshot, "num_groups", "group_list", self.count_names(api_url, "group_list")),
            profiling,
        )
        return self._finish(snapshot)

    async def _profile(self, snapshot: SiteSnapshot, target: SiteTarget, home: Response | None) -> None:
        """Name, description, language, type, country and (optionally) coordinates."""
        if home is not None and home.status < 400:
            # API discovery above used the page as served; only the profile needs what a
            # browser would show (an empty body or a script shell is rendered when a
            # RENDERING_BACKEND is configured).
            page = await render_if_needed(self, home)
            if page.error:
                snapshot.errors["home_rendering"] = str(page.error)
            facts = page_facts(page.response)
            snapshot.home_title = facts["title"]
            snapshot.home_description = facts["description"]
            snapshot.language = facts["language"]
        where = snapshot.home_url or target.listed_url or ""
        snapshot.site_type = site_type_of(where)
        snapshot.country = country_of(where)
        snapshot.country_name = country_name(snapshot.country)
        if self.geocoder is None:
            return
        if target.catalog_location:
            snapshot.location, query = target.catalog_location, {"q": target.catalog_location}
        elif snapshot.country and snapshot.country != "EU":
            snapshot.location, query = snapshot.country, {"country": snapshot.country}
        else:
            return
        try:
            found = await self.geocoder.locate(query)
        except FetchError as error:
            snapshot.errors["geocoder"] = str(error)
            return
        if found:
            snapshot.latitude, snapshot.longitude = found

    def _read_status(self, snapshot: SiteSnapshot, status: dict[str, Any]) -> None:
        snapshot.status_show = status
        snapshot.ckan_version = text_field(status, "ckan_version")
        snapshot.site_title = text_field(status, "site_title")
        snapshot.site_url = text_field(status, "site_url")
        snapshot.locale_default = text_field(status, "locale_default")
        # No ckan_version is not an error: ckan.hide_version (2.10+) removes it.
        snapshot.extensions = normalize_extensions(status.get("extensions"))

    async def _measure(self, snapshot: SiteSnapshot, field: str, endpoint: str, measurement: Any) -> None:
        """Set ``field`` from ``measurement``, or record why ``endpoint`` failed."""
        try:
            setattr(snapshot, field, await measurement)
        except FetchError as error:
            snapshot.errors[endpoint] = str(error)

    async def _dataset_count(self, snapshot: SiteSnapshot, api_url: str) -> int:
        try:
            result = await self.call_action(api_url, "package_search", {"rows": 0})
            if not isinstance(result, dict):
                raise FetchError("wrong shape", "package_search result is not an object")
            count = as_count(result.get("count"), "package_search count")
            snapshot.num_datasets_method = "package_search"
            return count
        except FetchError as search_error:
            snapshot.errors["package_search"] = str(search_error)
        count = await self.count_names(api_url, "package_list")
        snapshot.num_datasets_method = "package_list"
        return count

    def _finish(self, snapshot: SiteSnapshot) -> SiteSnapshot:
        measured = (snapshot.ckan_version, snapshot.num_datasets, snapshot.num_organizations, snapshot.num_groups)
        if snapshot.api_url is None:
            snapshot.status = "failed"
        elif all(value is not None for value in measured):
            snapshot.status = "ok"
        else:
            snapshot.status = "partial"
        stats = self.crawler.stats
        stats.inc_value(f"sites/status/{snapshot.status}")
        if snapshot.failure:
            stats.inc_value(f"sites/failure/{snapshot.failure.split(':', 1)[0]}")
        for endpoint, reason in snapshot.errors.items():
            stats.inc_value(f"sites/errors/{endpoint}/{reason.split(':', 1)[0]}")
        return snapshot
