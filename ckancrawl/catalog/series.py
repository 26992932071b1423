"""The datastore time series: one table per item type, its columns declared once here.

A row is one entity (site, extension) in one run. The key is (``name``,
``run_timestamp``): ``datastore_upsert`` with method ``upsert`` replaces the row of a
rerun or resumed run instead of adding another. Unknown values are NULL, never 0.

Column types are PostgreSQL's names as the datastore reports them back
(``datastore_search`` ``fields``), so an existing table can be compared with this
declaration. ``run_timestamp`` and the other instants are stored as UTC ``timestamp``
(without zone), which is how the datastore gives them back: "2026-11-22T03:00:00".

Rows are made from any mapping with the item's field names: an item (through
ItemAdapter) or the document MongoPipeline stored for it, so the replay command builds
exactly the rows the crawl would have written.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ckancrawl.items import ExtensionSnapshot, SiteSnapshot

KEY = ("name", "run_timestamp")


@dataclass(frozen=True)
class Column:
    id: str
    #: The datastore type, as datastore_search reports it.
    type: str
    #: The item field it comes from; default: the same name.
    source: str | None = None
    notes: str = ""

    def value(self, snapshot: Mapping[str, Any]) -> Any:
        value = snapshot.get(self.source or self.id)
        if value is None:
            return None
        if self.type == "timestamp":
            return utc_timestamp(value)
        if self.type == "int8":
            return int(value)
        if self.type == "bool":
            return bool(value)
        if self.type == "_text":
            return [str(v) for v in value]
        return str(value)


@dataclass(frozen=True)
class ColumnCheck:
    """How an existing table differs from the declared columns."""

    missing: tuple[str, ...] = ()
    #: (column, declared type, existing type)
    retyped: tuple[tuple[str, str, str], ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def blocks_writing(self) -> bool:
        return bool(self.missing or self.retyped)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing columns: " + ", ".join(self.missing))
        if self.retyped:
            parts.append("other types: " + ", ".join(f"{c} is {had}, ours is {want}" for c, want, had in self.retyped))
        if self.extra:
            parts.append("columns we do not write: " + ", ".join(self.extra))
        return "; ".join(parts) or "same columns"


@dataclass(frozen=True)
class Series:
    """One time series table: where it lives by default and what its columns are."""

    #: The item's MongoDB collection name ("sites"), also the series' name.
    name: str
    item_class: type
    #: Setting names and defaults of the catalog dataset and the resource's name.
    dataset_setting: str
    default_dataset: str
    resource_setting: str
    default_resource: str
    title: str
    columns: tuple[Column, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return KEY

    def row(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        return {column.id: column.value(snapshot) for column in self.columns}

    def datastore_fields(self) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "type": c.type, **({"info": {"notes": c.notes}} if c.notes else {})}
            for c in self.columns
        ]

    def check(self, existing: list[Mapping[str, Any]]) -> ColumnCheck:
        """Compare datastore_search's ``fields`` of an existing table with ours."""
        have = {str(f.get("id")): str(f.get("type")) for f in existing if not str(f.get("id")).startswith("_")}
        declared = {c.id: c.type for c in self.columns}
        missing = tuple(c for c in declared if c not in have)
        retyped = tuple((c, t, have[c]) for c, t in declared.items() if c in have and _base(have[c]) != _base(t))
        extra = tuple(c for c in have if c not in declared)
        return ColumnCheck(missing, retyped, extra)


def _base(type_name: str) -> str:
    return _ALIASES.get(type_name.lower(), type_name.lower())


#: Spellings of the same PostgreSQL type (what a table made by hand may report).
_ALIASES = {"int": "int4", "integer": "int4", "bigint": "int8", "boolean": "bool", "float": "float8",
            "timestamp without time zone": "timestamp", "text[]": "_text"}


def utc_timestamp(value: Any) -> str:
    """An ISO 8601 instant as naive UTC, as the datastore stores and returns it."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


_COMMON = (
    Column("name", "text", None, "the site or extension: its catalog dataset name, else the listed URL or repository"),
    Column("run_timestamp", "timestamp", None, "start of the crawl run (UTC); one value per run"),
    Column("catalog_dataset", "text"),
    Column("status", "text", None, "ok, partial (some values unknown) or failed"),
)

SITES = Series(
    name="sites",
    item_class=SiteSnapshot,
    dataset_setting="DATASTORE_SITES_DATASET",
    default_dataset="ckan-sites-metadata",
    resource_setting="DATASTORE_SITES_RESOURCE",
    default_resource="CKAN Sites Dynamic Metadata",
    title="CKAN sites: metadata over time",
    columns=(
        Column("name", "text", "site", _COMMON[0].notes),
        *_COMMON[1:],
        Column("url", "text", "listed_url", "the URL as listed"),
        Column("api_url", "text", None, "the Action API base that answered"),
        Column("ckan_version", "text"),
        Column("num_datasets", "int8"),
        Column("num_organizations", "int8"),
        Column("num_groups", "int8"),
        Column("extensions", "_text", None, "plugins named by status_show, sorted"),
        Column("failure", "text", None, "why the site could not be measured"),
    ),
)

EXTENSIONS = Series(
    name="extensions",
    item_class=ExtensionSnapshot,
    dataset_setting="DATASTORE_EXTENSIONS_DATASET",
    default_dataset="ckan-extensions-metadata",
    resource_setting="DATASTORE_EXTENSIONS_RESOURCE",
    default_resource="CKAN Extensions Dynamic Metadata",
    title="CKAN extensions: GitHub metrics over time",
    columns=(
        Column("name", "text", "extension", _COMMON[0].notes),
        *_COMMON[1:],
        Column("repository", "text", "full_name", "owner/name on GitHub now (after renames)"),
        Column("stars", "int8"),
        Column("forks_count", "int8"),
        Column("open_issues", "int8", None, "pull requests excluded"),
        Column("open_pull_requests", "int8"),
        Column("contributors_count", "int8"),
        Column("total_releases", "int8"),
        Column("latest_release", "text"),
        Column("release_date", "timestamp", None, "publication of the latest release"),
        Column("discussions", "int8"),
        Column("is_archived", "bool"),
        Column("license", "text"),
        Column("repository_size", "int8", None, "kilobytes"),
        Column("last_update", "timestamp", None, "last push"),
        Column("failure", "text", None, "why the repository could not be measured"),
    ),
)

SERIES: dict[type, Series] = {SITES.item_class: SITES, EXTENSIONS.item_class: EXTENSIONS}
SERIES_BY_NAME: dict[str, Series] = {s.name: s for s in SERIES.values()}


def series_for(item_class: type) -> Series | None:
    return SERIES.get(item_class)
