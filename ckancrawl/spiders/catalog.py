"""Base for spiders whose work list comes from the CKAN Ecosystem Catalog.

Spider arguments:
- ``catalog``: the catalog's URL (default: the ``CATALOG_URL`` setting).

A concrete spider sets ``dataset_type`` (``site``, ``extension``) and turns each
catalog dataset into work in its own ``start()``.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ckancrawl.failures import FetchError
from ckancrawl.site_urls import usable_url
from ckancrawl.spiders.ckan_api import CkanApiSpider


class CatalogSpider(CkanApiSpider):
    #: The ckanext-scheming dataset type to list from the catalog.
    dataset_type: str = ""
    #: Rows per package_search page when reading the catalog.
    catalog_page_size = 100

    def __init__(self, *args: Any, catalog: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if catalog is not None and not usable_url(catalog):
            raise ValueError(f"catalog={catalog!r} is not an http(s) URL; give the catalog's home page URL")
        self._catalog_arg = catalog

    @property
    def catalog_url(self) -> str:
        url = self._catalog_arg or self.crawler.settings.get("CATALOG_URL")
        if not usable_url(url):
            raise ValueError(f"CATALOG_URL={url!r} is not an http(s) URL")
        return url.rstrip("/") + "/"

    @property
    def catalog_api_url(self) -> str:
        return self.catalog_url + "api/3/action/"

    async def catalog_datasets(self) -> AsyncIterator[dict[str, Any]]:
        """Every public catalog dataset of ``dataset_type``; logs and stops on failure."""
        stats = self.crawler.stats
        count = 0
        try:
            async for dataset in self.search_datasets(
                self.catalog_api_url, f"+dataset_type:{self.dataset_type}", rows=self.catalog_page_size
            ):
                count += 1
                yield dataset
        except FetchError as error:
            stats.set_value(f"{self.name}/catalog/error", str(error))
            self.logger.error(
                "Could not read the %s datasets of the catalog at %s after %d of them: %s. "
                "Check that the catalog is up, or point -a catalog=URL (or CATALOG_URL) at another one.",
                self.dataset_type, self.catalog_url, count, error,
            )
        stats.set_value(f"{self.name}/catalog/datasets", count)
