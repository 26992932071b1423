"""One time series table in the catalog's datastore: find it, create it if allowed,
check its columns, write rows. Blocking; call from a worker thread.

The resource is found by name in its dataset. With ``create=True`` a missing dataset
(``package_create``), resource and table (``datastore_create`` with the declared
fields and the primary key) are made; otherwise their absence is a
:class:`TableProblem`. An existing table is compared with the declaration before
anything is written: missing columns or other types are a TableProblem (nothing is
written); columns we do not write are only logged.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from ckancrawl.catalog.client import CatalogClient, CatalogError
from ckancrawl.catalog.pending import destination
from ckancrawl.catalog.series import Series

logger = logging.getLogger(__name__)

#: datastore_search's most rows per call (ckan.datastore.search.rows_max default).
SEARCH_PAGE = 32000


class TableProblem(Exception):
    """The table cannot be written as it is (missing, other columns, ambiguous)."""


class SeriesTable:
    """The datastore table of one Series in one catalog dataset."""

    def __init__(self, client: CatalogClient, series: Series, dataset: str, resource: str, *,
                 create: bool = False, owner_org: str | None = None, batch_size: int = 100):
        self.client = client
        self.series = series
        self.dataset = dataset
        self.resource = resource
        self.create = create
        self.owner_org = owner_org
        self.batch_size = max(1, batch_size)
        self.resource_id: str | None = None

    @classmethod
    def from_settings(cls, client: CatalogClient, series: Series, settings: Any) -> SeriesTable:
        return cls(
            client,
            series,
            settings.get(series.dataset_setting) or series.default_dataset,
            settings.get(series.resource_setting) or series.default_resource,
            create=settings.getbool("DATASTORE_SERIES_CREATE", False),
            owner_org=settings.get("DATASTORE_SERIES_OWNER_ORG") or None,
            batch_size=settings.getint("DATASTORE_BATCH_SIZE", 100),
        )

    @property
    def destination(self) -> str:
        """Names where rows go, for pending files (ckancrawl.catalog.pending)."""
        return destination(self.client.url, self.dataset, self.resource)

    @property
    def where(self) -> str:
        return f"resource {self.resource!r} of dataset {self.dataset!r} at {self.client.url}"

    # -- finding and creating ------------------------------------------------------------

    def ensure(self) -> str:
        """The resource id of a table fit for our rows; raise TableProblem or CatalogError."""
        if self.resource_id:
            return self.resource_id
        dataset = self._dataset()
        resource = self._resource(dataset)
        if resource is None:
            self._require_create("it has no resource with that name")
            self.resource_id = self._create_table({"resource": {
                "package_id": dataset["id"], "name": self.resource,
                "description": f"{self.series.title}. One row per {self.series.name[:-1]} and crawl run, "
                               "written by ckancrawl.",
            }})
            logger.info("Created the datastore table %s", self.where)
            return self.resource_id
        if not resource.get("datastore_active"):
            self._require_create("the resource has no datastore table")
            self.resource_id = self._create_table({"resource_id": resource["id"]})
            logger.info("Created the datastore table of %s", self.where)
            return self.resource_id
        self._check_columns(resource["id"])
        self.resource_id = resource["id"]
        return self.resource_id

    def _dataset(self) -> dict[str, Any]:
        try:
            return self.client.call("package_show", {"id": self.dataset})
        except CatalogError as error:
            if error.kind != "not found":
                raise
        self._require_create("the dataset does not exist")
        data = {"name": self.dataset, "title": self.series.title,
                "notes": f"{self.series.title}, written by ckancrawl after each crawl."}
        if self.owner_org:
            data["owner_org"] = self.owner_org
        try:
            created = self.client.call("package_create", data, write=True, idempotent=False)
        except CatalogError as error:
            if error.kind == "invalid" and "owner_org" in error.errors:
                raise TableProblem(f"cannot create dataset {self.dataset!r}: {error.detail}; "
                                   "set DATASTORE_SERIES_OWNER_ORG to an organization the key can publish in") from None
            raise
        logger.info("Created the catalog dataset %r for the %s time series", self.dataset, self.series.name)
        return created

    def _resource(self, dataset: dict[str, Any]) -> dict[str, Any] | None:
        named = [r for r in dataset.get("resources") or [] if r.get("name") == self.resource]
        if len(named) > 1:
            active = [r for r in named if r.get("datastore_active")]
            if len(active) > 1:
                raise TableProblem(f"dataset {self.dataset!r} has {len(active)} datastore resources named "
                                   f"{self.resource!r}: rename or delete all but one")
            named = active or named[:1]
        return named[0] if named else None

    def _require_create(self, what: str) -> None:
        if not self.create:
            raise TableProblem(f"cannot write the {self.series.name} time series to {self.where}: {what}. "
                               "Create it, point the DATASTORE_* settings at the right one, or set "
                               "DATASTORE_SERIES_CREATE=True to let the crawler create it")

    def _create_table(self, target: dict[str, Any]) -> str:
        answer = self.client.call("datastore_create", {
            **target, "fields": self.series.datastore_fields(), "primary_key": list(self.series.key),
        }, write=True, idempotent=False)
        return str(answer["resource_id"])

    def _check_columns(self, resource_id: str) -> None:
        answer = self.client.call("datastore_search", {"resource_id": resource_id, "limit": 0})
        check = self.series.check(answer.get("fields") or [])
        if check.blocks_writing:
            raise TableProblem(f"the table of {self.where} has other columns than the {self.series.name} series "
                               f"({check.describe()}); nothing was written. Fix the table (datastore_create with "
                               f"the fields of ckancrawl/catalog/series.py) or point the DATASTORE_* settings "
                               "at another resource")
        if check.extra:
            logger.warning("The table of %s has %s; they stay empty in our rows", self.where, check.describe())

    # -- rows -----------------------------------------------------------------------------

    def upsert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write rows in batches (upsert on the key); return how many were written.

        Raises on the first failing batch; the batches before it are written.
        """
        resource_id = self.ensure()
        written = 0
        for start in range(0, len(rows), self.batch_size):
            batch = list(rows[start:start + self.batch_size])
            self.client.call("datastore_upsert", {
                "resource_id": resource_id, "records": batch, "method": "upsert",
            }, write=True)
            written += len(batch)
        return written

    def count(self, run_timestamp: str) -> int:
        answer = self.client.call("datastore_search", {
            "resource_id": self.ensure(), "filters": {"run_timestamp": run_timestamp}, "limit": 0,
        })
        return int(answer.get("total") or 0)

    def names(self, run_timestamp: str) -> set[str]:
        """The names that have a row for this run."""
        resource_id = self.ensure()
        names: set[str] = set()
        offset = 0
        while True:
            answer = self.client.call("datastore_search", {
                "resource_id": resource_id, "filters": {"run_timestamp": run_timestamp}, "fields": ["name"],
                "limit": SEARCH_PAGE, "offset": offset, "sort": "_id",
            })
            records = answer.get("records") or []
            names.update(str(r["name"]) for r in records)
            if len(records) < SEARCH_PAGE:
                return names
            offset += len(records)

    def rows(self) -> Iterable[dict[str, Any]]:
        """Every row, in insertion order (tests and audits)."""
        resource_id = self.ensure()
        offset = 0
        while True:
            answer = self.client.call("datastore_search", {
                "resource_id": resource_id, "limit": SEARCH_PAGE, "offset": offset, "sort": "_id",
            })
            records = answer.get("records") or []
            yield from records
            if len(records) < SEARCH_PAGE:
                return
            offset += len(records)
