"""A client for the test catalog: what tests need to fill it and look into it.

`Catalog` wraps the running CKAN's Action API with ckanapi (the library the crawler
writes to the catalog with). `seed_site_datasets` and `seed_extension_datasets` create
datasets from plain dicts, in parallel, skipping names that already exist so that a
seeding helper can be called by several tests of one session.

    catalog.seed_site_datasets([{"name": "demo", "title": "Demo", "url": "https://demo.ckan.org"}])
"""
from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from ckanapi import RemoteCKAN, ValidationError

USER_AGENT = "ckancrawl-tests"


@dataclasses.dataclass
class SeedReport:
    """What a seeding call did: the datasets created (as returned), the names skipped, the time."""
    created: list[dict[str, Any]]
    skipped: list[str]
    seconds: float


class Catalog:
    """The test catalog: `.url`, `.api_key` (a sysadmin's token), `.admin` (RemoteCKAN), `.org`."""

    def __init__(self, url: str, api_key: str, org: str, org_id: str = "", admin_name: str = ""):
        self.url = url
        self.api_key = api_key
        self.org = org
        self.org_id = org_id
        self.admin_name = admin_name
        self.admin = RemoteCKAN(url, apikey=api_key, user_agent=USER_AGENT)
        self._local = threading.local()

    def client(self) -> RemoteCKAN:
        """A sysadmin client for the calling thread (a requests session is not shared)."""
        if not hasattr(self._local, "client"):
            self._local.client = RemoteCKAN(self.url, apikey=self.api_key, user_agent=USER_AGENT)
        return self._local.client

    def anonymous(self) -> RemoteCKAN:
        return RemoteCKAN(self.url, user_agent=USER_AGENT)

    def action(self, name: str, /, **data: Any) -> Any:
        return self.client().call_action(name, data)

    # --- organizations -----------------------------------------------------------------------

    def create_organization(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create organization `name`, or return it if it exists."""
        try:
            return self.action("organization_create", name=name, title=fields.pop("title", name), **fields)
        except ValidationError as error:
            if "name" in getattr(error, "error_dict", {}):
                return self.action("organization_show", id=name)
            raise

    # --- datasets ------------------------------------------------------------------------------

    def dataset_names(self) -> set[str]:
        """Names of all active public datasets of every type (package_list: no search index)."""
        return set(self.action("package_list"))

    def create_dataset(self, dataset: dict[str, Any], dataset_type: str | None = None) -> dict[str, Any]:
        """package_create with the test organization as owner unless the dict names one."""
        data = {"owner_org": self.org, **dataset}
        if dataset_type:
            data.setdefault("type", dataset_type)
        return self.action("package_create", **data)

    def create_datasets(self, datasets: Iterable[dict[str, Any]], dataset_type: str | None = None,
                        threads: int = 4) -> list[dict[str, Any]]:
        """Create datasets in parallel (CKAN runs two workers); results in input order."""
        datasets = list(datasets)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            return list(pool.map(lambda d: self.create_dataset(d, dataset_type), datasets))

    def seed_datasets(self, datasets: Iterable[dict[str, Any]], dataset_type: str,
                      threads: int = 4) -> SeedReport:
        """Create the datasets whose names do not exist yet; idempotent within a session."""
        started = time.monotonic()
        datasets = list(datasets)
        existing = self.dataset_names()
        wanted = [d for d in datasets if d["name"] not in existing]
        created = self.create_datasets(wanted, dataset_type, threads)
        skipped = [d["name"] for d in datasets if d["name"] in existing]
        return SeedReport(created=created, skipped=skipped, seconds=round(time.monotonic() - started, 2))

    def seed_site_datasets(self, datasets: Iterable[dict[str, Any]], threads: int = 4) -> SeedReport:
        return self.seed_datasets(datasets, "site", threads)

    def seed_extension_datasets(self, datasets: Iterable[dict[str, Any]], threads: int = 4) -> SeedReport:
        return self.seed_datasets(datasets, "extension", threads)

    def search(self, **params: Any) -> dict[str, Any]:
        return self.action("package_search", **params)

    def purge_datasets(self, names: Iterable[str] | None = None, threads: int = 4) -> int:
        """dataset_purge the named datasets (default: all of them); returns how many."""
        names = sorted(self.dataset_names() if names is None else names)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(lambda name: self.action("dataset_purge", id=name), names))
        return len(names)
