"""Typed items. Every component reads them through ItemAdapter.

Storage hints are class attributes (not fields) so they never reach feeds:
- ``mongo_collection``: the history collection; ``<name>_latest`` keeps the newest
  document per entity.
- ``mongo_key``: the fields that identify one document in the history collection. A
  rerun or a resumed run writes the same key again, so nothing is duplicated.
- ``entity_key``: the fields that identify the entity across runs (the latest view).

Unknown values are ``None``, never 0; ``errors`` says why, per endpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class SiteSnapshot:
    """One CKAN site as measured by one run of the ``sites`` spider."""

    mongo_collection: ClassVar[str] = "sites"
    mongo_key: ClassVar[tuple[str, ...]] = ("site", "run_timestamp")
    entity_key: ClassVar[tuple[str, ...]] = ("site",)

    #: Stable identity of the site: the catalog dataset name, else the listed URL.
    site: str
    #: Start of the run (UTC, ISO 8601), shared by every item of the run, kept on resume.
    run_timestamp: str
    #: Where the site came from: "catalog", "urls" (a file) or "url" (one argument).
    source: str
    #: The URL as listed (catalog dataset, file line or argument); None if there was none.
    listed_url: str | None = None
    #: Catalog dataset name and id when discovered from the catalog.
    catalog_dataset: str | None = None
    catalog_dataset_id: str | None = None
    #: "ok" (every probe answered), "partial" (some did) or "failed" (no Action API).
    status: str = "failed"
    #: Why the site as a whole could not be measured (no URL, not CKAN, DNS...).
    failure: str | None = None
    #: The home page's URL after redirects; None if it could not be fetched.
    home_url: str | None = None
    #: The Action API base that answered, after redirects, ending in "/action/".
    api_url: str | None = None
    ckan_version: str | None = None
    #: Sorted plugin names; None when unknown.
    extensions: list[str] | None = None
    site_title: str | None = None
    site_url: str | None = None
    locale_default: str | None = None
    num_datasets: int | None = None
    #: Which call gave num_datasets: "package_search" or "package_list".
    num_datasets_method: str | None = None
    num_organizations: int | None = None
    num_groups: int | None = None
    #: Failed probes: endpoint name -> reason a person understands.
    errors: dict[str, str] = field(default_factory=dict)
    #: status_show's result as the site returned it (keys sanitized before storage).
    status_show: dict[str, Any] | None = None
