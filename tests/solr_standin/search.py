"""The select handler: q and fq, sort, paging, fl and field facets over committed documents.

Parameters arrive as a list of (name, value) pairs so that `fq` and `facet.field` can
repeat. The answer has Solr's JSON shape: `responseHeader`, `response` with `numFound`,
`start`, `numFoundExact` and `docs`, and `facet_counts` when faceting is on.
"""
from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any, Iterable

from .document import Document
from .errors import SolrError
from .query import Query, parse_query
from .schema import Schema

TRUE_WORDS = {"true", "on", "yes"}


class Params:
    """Request parameters; `get` returns the first value, `all` every value."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self.pairs = list(pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def field_param(self, field: str, name: str, default: str | None = None) -> str | None:
        """A per-field override (`f.<field>.<name>`) or the general parameter."""
        return self.get(f"f.{field}.{name}", self.get(name, default))

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in reversed(self.pairs)}

    def echo(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for key, value in self.pairs:
            if key in shown:
                shown[key] = (shown[key] if isinstance(shown[key], list) else [shown[key]]) + [value]
            else:
                shown[key] = value
        return shown


def _to_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SolrError(400, f'For input string: "{value}"') from None


def _int_param(params: Params, name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    number = _to_int(value)
    if number < 0:
        raise SolrError(400, f"'{name}' parameter cannot be negative")
    return number


def _strip_local_params(value: str) -> str:
    return re.sub(r"^\s*\{![^}]*\}", "", value)


# --- sorting ----------------------------------------------------------------------------

def parse_sort(schema: Schema, spec: str) -> list[tuple[str, bool]]:
    """[(field or "score", descending)] from "field dir, field dir"; Solr's 400 when invalid."""
    keys: list[tuple[str, bool]] = []
    position = 0
    for clause in spec.split(","):
        start = position
        position += len(clause) + 1
        stripped = clause.lstrip()
        if not stripped.strip():
            continue
        lead = len(clause) - len(stripped)
        words = stripped.split()
        name = words[0]
        direction = words[1].lower() if len(words) == 2 else None
        if direction not in ("asc", "desc", "top", "bottom"):
            raise SolrError(400, f"Can't determine a Sort Order (asc or desc) in sort spec '{spec}', "
                                 f"pos={start + lead + len(name)}")
        descending = direction in ("desc", "top")
        if name not in ("score", "_docid_"):
            field = schema.field(name)
            if field is None:
                raise SolrError(400, f"sort param field can't be found: {name}")
            if field.multi_valued:
                raise SolrError(400, f"can not sort on multivalued field: {name} of type: {field.type.name}")
            if not field.indexed:
                raise SolrError(400, f"can not sort on a field w/o docValues unless it is indexed=true "
                                     f"uninvertible=true and the type supports Uninversion: {name}")
        keys.append((name, descending))
    return keys


def _sort_value(schema: Schema, doc: Document, name: str) -> Any:
    values = doc.field_values(name)
    if not values:
        return None
    value = values[0]
    field = schema.field(name)
    if field is not None and field.kind == "text":
        return field.type.query_analyzer.multiterm(value)
    return value


def sort_results(schema: Schema, hits: list[tuple[Document, float]], keys: list[tuple[str, bool]]) -> None:
    """Sort in place; missing values go last in either direction, ties by index order."""
    def compare(a: tuple[Document, float], b: tuple[Document, float]) -> int:
        for name, descending in keys:
            if name == "score":
                left, right = a[1], b[1]
            elif name == "_docid_":
                left, right = a[0].seq, b[0].seq
            else:
                left, right = _sort_value(schema, a[0], name), _sort_value(schema, b[0], name)
            if left == right:
                continue
            if left is None:
                return 1
            if right is None:
                return -1
            result = -1 if left < right else 1
            return -result if descending else result
        return (a[0].seq > b[0].seq) - (a[0].seq < b[0].seq)
    hits.sort(key=functools.cmp_to_key(compare))


# --- field list and facets --------------------------------------------------------------

def _field_list(params: Params) -> list[str]:
    names: list[str] = []
    for value in params.all("fl"):
        names.extend(part for part in re.split(r"[,\s]+", value) if part)
    return names or ["*"]


def _project(doc: Document, score: float, wanted: list[str]) -> dict[str, Any]:
    shown = {name: value for name, value in doc.stored.items()
             if any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted)}
    if "score" in wanted:
        shown["score"] = score
    return shown


def _facet_field(schema: Schema, params: Params, docs: list[Document], spec: str) -> tuple[str, list[Any]]:
    name = _strip_local_params(spec).strip()
    field = schema.require_field(name)
    limit = _to_int(params.field_param(name, "facet.limit", "100"))
    offset = _to_int(params.field_param(name, "facet.offset", "0"))
    mincount = _to_int(params.field_param(name, "facet.mincount", "0"))
    prefix = params.field_param(name, "facet.prefix")
    order = params.field_param(name, "facet.sort", "count" if limit > 0 else "index")
    counts: dict[str, int] = {}
    for doc in docs:
        for term in doc.terms(field):
            counts[term] = counts.get(term, 0) + 1
    items = [(term, count) for term, count in counts.items()
             if count >= mincount and (prefix is None or term.startswith(prefix))]
    if order in ("count", "true"):
        items.sort(key=lambda item: (-item[1], item[0]))
    else:
        items.sort(key=lambda item: item[0])
    items = items[offset:]
    if limit >= 0:
        items = items[:limit]
    flat: list[Any] = []
    for term, count in items:
        flat.extend((term, count))
    return name, flat


# --- the handler ----------------------------------------------------------------------

def _parse(schema: Schema, text: str | None, params: Params, def_type: str) -> Query | None:
    if text is None or not text.strip():
        return None
    return parse_query(schema, text, params.as_dict(), def_type)


def select(schema: Schema, docs: list[Document], params: Params) -> dict[str, Any]:
    """Run one select request over `docs` (in index order) and build Solr's JSON answer."""
    settings = params.as_dict()
    def_type = settings.get("defType", "lucene")
    q = params.get("q")
    if q is None or not q.strip():
        if def_type in ("dismax", "edismax") and params.get("q.alt"):
            query = _parse(schema, params.get("q.alt"), params, "lucene")
        else:
            query = None
    else:
        query = _parse(schema, q, params, def_type)
    filters = []
    for fq in params.all("fq"):
        if fq.strip():
            parsed = _parse(schema, fq, params, "lucene")
            filters.append(parsed)
    sort_spec = params.get("sort")
    keys = parse_sort(schema, sort_spec) if sort_spec and sort_spec.strip() else [("score", True)]
    start = _int_param(params, "start", 0)
    rows = _int_param(params, "rows", 10)
    wanted = _field_list(params)

    hits: list[tuple[Document, float]] = []
    if query is not None:
        for doc in docs:
            if any(f is None or f.score(doc) is None for f in filters):
                continue
            score = query.score(doc)
            if score is not None:
                hits.append((doc, score))
    sort_results(schema, hits, keys)

    answer: dict[str, Any] = {
        "responseHeader": {"status": 0, "QTime": 0, "params": params.echo()},
        "response": {"numFound": len(hits), "start": start, "numFoundExact": True,
                     "docs": [_project(doc, score, wanted) for doc, score in hits[start:start + rows]]},
    }
    if "score" in wanted:
        answer["response"]["maxScore"] = max((score for _, score in hits), default=0.0)
    if (params.get("facet") or "").lower() in TRUE_WORDS:
        matched = [doc for doc, _ in hits]
        answer["facet_counts"] = {
            "facet_queries": {},
            "facet_fields": dict(_facet_field(schema, params, matched, spec) for spec in params.all("facet.field")),
            "facet_ranges": {}, "facet_intervals": {}, "facet_heatmaps": {},
        }
    return answer
