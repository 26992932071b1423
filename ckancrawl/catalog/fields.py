"""Which item fields go to which catalog dataset fields, declared once, and what
"the same value" means for each.

The catalog is ckanext-scheming (see DESIGN.md, "The catalog's dataset types"). It
stores custom fields as text and gives integers back as strings ("12"), booleans as
"true"/"false", ``multiple_text`` fields (``extensions``) as lists in the order they
were written. So values are compared by meaning, per kind:

- ``INTEGER``: "12" == 12 == " 12 "; "" and None are no value.
- ``TEXT``: compared as stripped strings; "" is no value.
- ``BOOLEAN``: True == "true" == "True" == "1".
- ``TEXT_SET``: order and duplicates ignored; an empty list is no value (scheming drops
  empty entries and may store [] as nothing, so writing [] would never read back).
- ``DATETIME``: ISO 8601 instants, "…Z" == "…+00:00" == "…" (no zone: UTC). Written
  as UTC without a zone ("2024-02-01T12:30:00"): CKAN's search indexer re-formats
  fields named ``*_date`` and turns "…Z" into "…+00:00", which Solr refuses, failing the
  whole patch; a value without a zone gets Solr's "…Z".
- ``JSON_OBJECT``: written as JSON text (a text field cannot hold an object; CKAN
  answers 500 to one); equal when the decoded objects are equal.

Unknown item values (None) are never written: a known value in the catalog is never
replaced by an unknown one. A value known to have disappeared (a repository whose only
release was deleted) is therefore not cleared either; see README.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from ckancrawl.items import ExtensionSnapshot, SiteSnapshot


class Kind(Enum):
    INTEGER = "integer"
    TEXT = "text"
    BOOLEAN = "boolean"
    TEXT_SET = "text set"
    DATETIME = "datetime"
    JSON_OBJECT = "json object"


_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == {}


def _as_int(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _as_set(value: Any) -> frozenset[str] | None:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # an older scheming stored the JSON text
            try:
                value = json.loads(text)
            except ValueError:
                pass
        if isinstance(value, str):
            value = [part for part in text.replace(",", " ").split()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        return None
    return frozenset(str(entry).strip() for entry in value if str(entry).strip())


def _as_instant(value: Any) -> datetime | None:
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _as_object(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


_READERS = {
    Kind.INTEGER: _as_int,
    Kind.BOOLEAN: _as_bool,
    Kind.TEXT_SET: _as_set,
    Kind.DATETIME: _as_instant,
    Kind.JSON_OBJECT: _as_object,
    Kind.TEXT: lambda value: str(value).strip(),
}


@dataclass(frozen=True)
class CatalogField:
    """One catalog dataset field fed from one item field."""

    #: The catalog's field name (the scheming ``field_name``).
    name: str
    kind: Kind
    #: The item field it comes from; default: the same name.
    source: str | None = None
    #: A guess rather than a measurement (site profiles): written only where the catalog
    #: has no value, unless CATALOG_PROFILE_OVERWRITE says to overwrite.
    fill_only: bool = False
    #: The values the catalog accepts (a scheming choice list); others are not written.
    allowed: frozenset[str] | None = None

    @property
    def item_field(self) -> str:
        return self.source or self.name

    def meaning(self, value: Any) -> Any:
        """What a value means, comparable across representations; None for no value.

        A value that cannot be read as this kind means itself (as text), so that it
        differs from every proper value and gets replaced.
        """
        if _is_blank(value):
            return None
        meaning = _READERS[self.kind](value)
        if meaning is None:
            return ("unreadable", str(value))
        if self.kind is Kind.TEXT_SET and not meaning:
            return None
        return meaning

    def same(self, catalog_value: Any, item_value: Any) -> bool:
        return self.meaning(catalog_value) == self.meaning(item_value)

    def to_catalog(self, value: Any) -> Any:
        """The JSON value to send in package_patch."""
        if self.kind is Kind.INTEGER:
            return int(value)
        if self.kind is Kind.TEXT_SET:
            return sorted({str(entry) for entry in value if str(entry).strip()})
        if self.kind is Kind.JSON_OBJECT:
            return json.dumps(value, ensure_ascii=False)
        if self.kind is Kind.BOOLEAN:
            return bool(value)
        if self.kind is Kind.DATETIME:
            moment = _as_instant(value)
            if moment is not None:
                return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
        return str(value)


def _fields(*declared: tuple[str, Kind] | tuple[str, Kind, str] | CatalogField) -> dict[str, CatalogField]:
    made = [spec if isinstance(spec, CatalogField) else CatalogField(*spec) for spec in declared]
    return {field.name: field for field in made}


#: The catalog's site_type choices (DESIGN.md) that the domain rules can vouch for:
#: "Healthcare" has no choice in the catalog, and the rules' "Unknown" is no answer.
CATALOG_SITE_TYPES = frozenset({"Commercial", "Educational", "Government", "Non_profit", "Research"})


#: ``site`` datasets: what the sites spider measures.
SITE_FIELDS = _fields(
    ("num_datasets", Kind.INTEGER),
    ("num_organizations", Kind.INTEGER),
    ("num_groups", Kind.INTEGER),
    ("ckan_version", Kind.TEXT),
    ("extensions", Kind.TEXT_SET),
    # The site profile: filled in where the catalog is empty.
    CatalogField("site_type", Kind.TEXT, fill_only=True, allowed=CATALOG_SITE_TYPES),
    CatalogField("location", Kind.TEXT, "country_name", fill_only=True),
    CatalogField("latitude", Kind.TEXT, fill_only=True),
    CatalogField("longitude", Kind.TEXT, fill_only=True),
    CatalogField("language", Kind.TEXT, fill_only=True),
    CatalogField("notes", Kind.TEXT, "home_description", fill_only=True),
)

#: ``extension`` datasets: the GitHub metrics (ExtensionSnapshot uses the schema's names).
EXTENSION_FIELDS = _fields(
    ("stars", Kind.INTEGER),
    ("forks_count", Kind.INTEGER),
    ("open_issues", Kind.INTEGER),
    ("contributors_count", Kind.INTEGER),
    ("total_releases", Kind.INTEGER),
    ("latest_release", Kind.TEXT),
    ("release_date", Kind.DATETIME),
    ("discussions", Kind.INTEGER),
    ("is_archived", Kind.BOOLEAN),
    ("license", Kind.TEXT),
    ("language_stats", Kind.JSON_OBJECT),
    ("repository_size", Kind.INTEGER),
    ("last_update", Kind.DATETIME),
)

#: Item class -> the catalog fields its items update.
CATALOG_FIELDS: dict[type, dict[str, CatalogField]] = {
    SiteSnapshot: SITE_FIELDS,
    ExtensionSnapshot: EXTENSION_FIELDS,
}

#: MongoDB collection -> item class (for commands that read stored snapshots).
ITEM_CLASSES: dict[str, type] = {cls.mongo_collection: cls for cls in CATALOG_FIELDS}


def fields_for(item_class: type) -> dict[str, CatalogField] | None:
    return CATALOG_FIELDS.get(item_class)


def known_values(snapshot: Mapping[str, Any], fields: Mapping[str, CatalogField]) -> dict[str, Any]:
    """Catalog field -> item value, for the values the item knows (not None)."""
    known = {}
    for field in fields.values():
        value = snapshot.get(field.item_field)
        if field.allowed is not None and value not in field.allowed:
            continue
        if field.meaning(value) is not None:
            known[field.name] = value
    return known


def catalog_dataset_ref(snapshot: Mapping[str, Any]) -> str | None:
    """The id (stable across renames), else the name, of the item's catalog dataset."""
    return snapshot.get("catalog_dataset_id") or snapshot.get("catalog_dataset") or None
