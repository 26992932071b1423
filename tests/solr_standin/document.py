"""One indexed document: its values checked and typed by the schema, as Solr indexes them.

A document keeps what it was sent (for persistence), what Solr would return (stored
fields only, dates at millisecond precision, single values as scalars) and, per field,
the typed values that queries, sorting and facets look at, including copyField targets
and fields that are indexed but not stored.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from .dates import format_date, parse_date
from .errors import SolrError
from .schema import Field, Schema


def to_bool(text: Any) -> bool:
    """Solr's BoolField reading: true when the text starts with 1, t or T."""
    if isinstance(text, bool):
        return text
    text = str(text)
    return bool(text) and text[0] in "1tT"


def convert(field: Field, value: Any, doc_id: str = "") -> Any:
    """The typed value Solr would index for `value` in `field`; SolrError when it is invalid."""
    kind = field.kind
    try:
        if kind == "bool":
            return to_bool(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(str(value).strip())
        if kind == "float":
            return float(str(value).strip())
        if kind == "date":
            if isinstance(value, dt.datetime):
                return parse_date(format_date(value.astimezone(dt.timezone.utc)))
            return parse_date(str(value))
    except (ValueError, SolrError):
        detail = f"Invalid Date String:'{value}'" if kind == "date" else f'For input string: "{value}"'
        raise SolrError(400, f"ERROR: [doc={doc_id}] Error adding field '{field.name}'='{value}' msg={detail}") from None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def output(field: Field, value: Any) -> Any:
    """A typed value as Solr writes it back in a JSON response."""
    if field.kind == "date":
        return format_date(value)
    return value


class Document:
    __slots__ = ("source", "key", "seq", "version", "values", "stored", "_tokens", "_terms")

    def __init__(self, schema: Schema, source: dict[str, Any], seq: int, version: int,
                 now: dt.datetime | None = None):
        self.source = source
        self.seq = seq
        self.version = version
        unique = source.get(schema.unique_key)
        if unique in (None, "", []):
            raise SolrError(400, f"Document is missing mandatory uniqueKey field: {schema.unique_key}")
        self.key = str(unique[0] if isinstance(unique, list) else unique)
        self.values: dict[str, list[Any]] = {}
        self.stored: dict[str, Any] = {}
        self._tokens: dict[str, list[set[tuple[int, str]]]] = {}
        self._terms: dict[str, set[str]] = {}

        for name, raw in source.items():
            if raw is None:
                continue
            field = schema.field(name)
            if field is None:
                raise SolrError(400, f"ERROR: [doc={self.key}] unknown field '{name}'")
            items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            items = [item for item in items if item is not None]
            if not items:
                continue
            if any(isinstance(item, dict) for item in items):
                raise SolrError(400, f"ERROR: [doc={self.key}] the stand-in does not support atomic "
                                     f"updates or nested documents (field '{name}')")
            if len(items) > 1 and not field.multi_valued:
                shown = ", ".join(str(item) for item in items)
                raise SolrError(400, f"ERROR: [doc={self.key}] multiple values encountered for non "
                                     f"multiValued field {name}: [{shown}]")
            typed = [convert(field, item, self.key) for item in items]
            self.values.setdefault(name, []).extend(typed)
            if field.stored:
                shown_values = [output(field, v) for v in typed]
                self.stored[name] = shown_values if field.multi_valued else shown_values[0]
            for target in schema.copy_targets(name):
                self._copy(schema, target, items)

        for field in schema.defaulted_fields():
            if field.name not in self.values:
                value = convert(field, field.default if field.default != "NOW" or field.kind != "date"
                                else format_date(now or dt.datetime.now(dt.timezone.utc)), self.key)
                self.values[field.name] = [value]
                if field.stored:
                    self.stored[field.name] = output(field, value)
        for field in schema.required_fields():
            if field.name not in self.values:
                raise SolrError(400, f"[doc={self.key}] missing required field: {field.name}")
        if schema.field("_version_") is not None:
            self.stored["_version_"] = version

    def _copy(self, schema: Schema, target: str, items: list[Any]) -> None:
        field = schema.field(target)
        if field is None:
            raise SolrError(400, f"ERROR: [doc={self.key}] copyField dest :'{target}' is not an explicit field "
                                 "and doesn't match a dynamicField.")
        current = self.values.setdefault(target, [])
        typed = [convert(field, item, self.key) for item in items]
        if current and not field.multi_valued or len(typed) > 1 and not field.multi_valued:
            raise SolrError(400, f"ERROR: [doc={self.key}] multiple values encountered for non multiValued "
                                 f"copy field {target}: {items[0]}")
        current.extend(typed)
        if field.stored:
            shown = [output(field, v) for v in current]
            self.stored[target] = shown if field.multi_valued else shown[0]

    def field_values(self, name: str) -> list[Any]:
        return self.values.get(name, [])

    def tokens(self, field: Field) -> list[set[tuple[int, str]]]:
        """The (position, term) sets of a text field, one set per value."""
        cached = self._tokens.get(field.name)
        if cached is None:
            analyzer = field.type.index_analyzer
            cached = [set(analyzer.analyze(value)) for value in self.values.get(field.name, [])]
            self._tokens[field.name] = cached
        return cached

    def terms(self, field: Field) -> set[str]:
        """The indexed terms of a field, as facets count them."""
        cached = self._terms.get(field.name)
        if cached is None:
            if field.kind == "text":
                cached = {term for token_set in self.tokens(field) for _, term in token_set}
            elif field.kind == "bool":
                cached = {"true" if v else "false" for v in self.values.get(field.name, [])}
            elif field.kind == "date":
                cached = {format_date(v) for v in self.values.get(field.name, [])}
            else:
                cached = {str(v) for v in self.values.get(field.name, [])}
            self._terms[field.name] = cached
        return cached
