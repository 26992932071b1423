"""Datasets of a simulated portal: what package_search, package_show and package_list serve.

A portal with ``CkanSpec.datasets`` (a :class:`DatasetsSpec`) serves generated
datasets shaped like CKAN 2.9 to 2.11's dataset dicts (``package_show``; search
results are the same dicts, from the index's ``validated_data_dict``), deterministic
for a seed: dataset ``i`` always has the same id (a UUID4 from the seed), name
(``dataset-000042``) and content, and ``metadata_modified`` in 2020 unless it was
changed later. Shapes seen on real portals are mixed in by index (:data:`SHAPES`).

The server keeps one :class:`DatasetStore` per portal. It can change while it is
paged (``DatasetsSpec.churn``: after the N-th package_search call, remove, add or
modify datasets) or between runs (the control endpoint, see tests.world.server).

What the store answers, after CKAN (ckan/logic/action/get.py, lib/search/query.py):
- package_search: ``q`` must be empty or ``*:*``; ``fq`` may hold range clauses on
  ``id`` and ``metadata_modified`` (``[a TO b]``, ``{a TO *]``, quoted or not, ``+`` or
  none) and ``dataset_type:X`` / ``type:X``; ``sort`` ``id asc|desc`` or the default
  ``score desc, metadata_modified desc``; ``rows`` (default 10) capped at
  ``rows_max``; ``start``; ``fl`` (ids and the listed fields only: 2.9+). ``count`` is
  the number of matches.
- package_show: by id or name; 404 "Not Found Error" otherwise.
- package_list: names sorted, ``limit``/``offset``.
"""
from __future__ import annotations

import bisect
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

#: Dataset shapes, cycled by index (``DatasetsSpec.shapes``):
#: - plain: core CKAN; extras a list of {key, value}.
#: - extras_flat: ckanext-scheming; custom fields at the top level, no ``extras``.
#: - extras_missing: no ``extras`` key at all (some 2.2-era and proxied portals).
#: - odd_keys: keys MongoDB rejects or tools choke on: ``.``, a leading ``$``, NUL,
#:   the empty key, a key that looks percent-encoded, non-ASCII.
#: - odd_resources: formats such as ".pdf", "PDF", "application/pdf", "Excel", "xisx",
#:   "" and percent-encoded resource URLs.
SHAPES = ("plain", "extras_flat", "extras_missing", "odd_keys", "odd_resources")
#: Shapes only asked for by name (not cycled by presets): "injection" carries MongoDB
#: operators and identity fields as keys and values.
NAMED_SHAPES = ("injection",)

BASE_TIME = datetime(2020, 1, 1, tzinfo=timezone.utc)
ORG_ID = "0b5e6c1d-7f0a-4d7e-9a43-5c1f2a1e9b01"

_ODD_FORMATS = [".pdf", "PDF", "application/pdf", "Excel", "xisx", "", "CSV ", "text/csv; charset=utf-8"]
_ODD_URLS = [
    "http://files.example.org/data%20set/r%C3%A9sum%C3%A9.csv?x=1%2B2",
    "https://files.example.org/%7Euser/file%2Fwith%2Fslashes.xlsx",
    "http://files.example.org/Jahresbericht 2020 (final).PDF",
    "ftp://ftp.example.org/pub/data.zip",
]


@dataclass
class DatasetsSpec:
    """The datasets of one simulated portal (plain data: round-trips through JSON)."""

    count: int = 100
    seed: int = 0
    shapes: list[str] = field(default_factory=lambda: ["plain"])
    resources: int = 2
    #: Characters of filler text in each dataset's notes (sizes the JSON).
    notes_chars: int = 300
    #: Indices of datasets whose notes make them larger than MongoDB's 16 MB limit.
    huge: list[int] = field(default_factory=list)
    #: ckan.search.rows_max.
    rows_max: int = 1000
    #: package_search honours ``fl`` (2.9+); else whole datasets come back.
    honours_fl: bool = True
    #: Changes made while the portal is paged: ``{"after_search_calls": N, "remove":
    #: [index...], "add": [index...], "modify": [index...]}`` applied right after the
    #: N-th package_search call has been answered.
    churn: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.shapes) - set(SHAPES) - set(NAMED_SHAPES)
        if unknown:
            raise ValueError(f"unknown dataset shapes {sorted(unknown)}; use {SHAPES}")


def dataset_id(spec: DatasetsSpec, index: int) -> str:
    return str(uuid.UUID(int=random.Random(f"{spec.seed}:{index}:id").getrandbits(128), version=4))


def dataset_name(index: int) -> str:
    return f"dataset-{index:06d}"


def _iso(moment: datetime) -> str:
    """CKAN's metadata_modified: ``datetime.isoformat()`` of naive UTC, microseconds kept."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()


def make_dataset(spec: DatasetsSpec, index: int, version: int = 0, modified: str | None = None) -> dict[str, Any]:
    """Dataset ``index`` of the portal, as package_show returns it."""
    rng = random.Random(f"{spec.seed}:{index}:body")
    identifier = dataset_id(spec, index)
    name = dataset_name(index)
    created = _iso(BASE_TIME + timedelta(minutes=index, microseconds=rng.randrange(1, 999_999)))
    shape = spec.shapes[index % len(spec.shapes)]
    filler = "Lorem ipsum dolor sit amet. " * (spec.notes_chars // 28 + 1)
    notes = (f"Dataset {index} (version {version}). " + filler)[: max(40, spec.notes_chars)]
    if index in spec.huge:
        notes += "x" * (17 * 1024 * 1024)
    resources = []
    for r in range(spec.resources):
        if shape == "odd_resources":
            fmt, url = _ODD_FORMATS[(index + r) % len(_ODD_FORMATS)], _ODD_URLS[(index + r) % len(_ODD_URLS)]
        else:
            fmt, url = ("CSV", "JSON", "XLSX")[r % 3], f"http://files.example.org/{name}/resource-{r}.{('csv', 'json', 'xlsx')[r % 3]}"
        resources.append({
            "cache_last_updated": None, "cache_url": None, "created": created,
            "datastore_active": False, "description": f"Resource {r} of {name}", "format": fmt,
            "hash": "", "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "last_modified": None,
            "metadata_modified": created, "mimetype": None, "mimetype_inner": None, "name": f"resource-{r}",
            "package_id": identifier, "position": r, "resource_type": None, "size": None, "state": "active",
            "url": url, "url_type": None,
        })
    tags = [{"display_name": t, "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "name": t,
             "state": "active", "vocabulary_id": None} for t in rng.sample(["economy", "health", "transport", "environment", "education"], 2)]
    dataset: dict[str, Any] = {
        "author": None, "author_email": None, "creator_user_id": "5f0c1d3e-1111-4a2b-8c3d-000000000001",
        "id": identifier, "isopen": True, "license_id": "cc-by", "license_title": "Creative Commons Attribution",
        "license_url": "http://www.opendefinition.org/licenses/cc-by", "maintainer": "Data team",
        "maintainer_email": "data@example.org", "metadata_created": created,
        "metadata_modified": modified or created, "name": name, "notes": notes,
        "num_resources": len(resources), "num_tags": len(tags),
        "organization": {"id": ORG_ID, "name": "open-data-office", "title": "Open Data Office", "type": "organization",
                         "description": "", "image_url": "", "created": "2019-12-01T00:00:00.000000",
                         "is_organization": True, "approval_status": "approved", "state": "active"},
        "owner_org": ORG_ID, "private": False, "state": "active", "title": f"Dataset {index}", "type": "dataset",
        "url": "", "version": str(version) if version else None, "groups": [], "resources": resources, "tags": tags,
        "relationships_as_object": [], "relationships_as_subject": [],
    }
    extras = [{"key": "update_frequency", "value": "monthly"}, {"key": "spatial", "value": "Europe"}]
    if shape == "plain" or shape == "odd_resources":
        dataset["extras"] = extras
    elif shape == "extras_flat":
        dataset.update({extra["key"]: extra["value"] for extra in extras})
    elif shape == "odd_keys":
        dataset["extras"] = extras + [{"key": "dcat.theme", "value": "ECON"}, {"key": "$schema", "value": "x"}]
        dataset.update({
            "dcat.theme": "http://publications.europa.eu/resource/authority/data-theme/ECON",
            "$schema": "https://example.org/schema.json", "título": "Conjunto de datos", "名前": "データ",
            "": "empty key", "a%2Eb": "looks encoded", "nul\u0000key": "nul", "nested": {"a.b": {"$c": [{"d.e": 1}]}},
        })
    elif shape == "injection":
        dataset.update({
            "$set": {"raw": "overwritten", "portal": "http://victim.example"}, "_id": {"$gt": ""},
            "$where": "sleep(1000)", "portal": {"$ne": None}, "dataset_id": {"$gt": ""},
            "title": {"$gt": ""}, "notes": "$set", "extras": [{"key": "$unset", "value": {"$gt": ""}}],
        })
    return dataset


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class SearchError(Exception):
    """A query the store cannot answer: the server sends CKAN's 409 Search Error."""


_RANGE = re.compile(r'^([+-]?)(\w+):([\[{])\s*("[^"]*"|\S+)\s+TO\s+("[^"]*"|\S+)\s*([\]}])$')
_TERM = re.compile(r'^([+-]?)(\w+):("[^"]*"|\S+)$')
_CLAUSE = re.compile(r'[+-]?\w+:(?:[\[{]\s*(?:"[^"]*"|\S+)\s+TO\s+(?:"[^"]*"|\S+)\s*[\]}]|"[^"]*"|\S+)')


def _unquote(value: str) -> str:
    return value[1:-1].replace('\\"', '"').replace("\\\\", "\\") if value.startswith('"') else value


class DatasetStore:
    """The live datasets of one portal."""

    def __init__(self, spec: DatasetsSpec) -> None:
        self.spec = spec
        self.search_calls = 0
        self._by_id: dict[str, dict[str, Any]] = {}
        self._json: dict[str, bytes] = {}
        self._id_of_name: dict[str, str] = {}
        self._ids: list[str] = []
        self._versions: dict[int, int] = {}
        for index in range(spec.count):
            self._put(make_dataset(spec, index))
        self._ids.sort()

    # -- changes -------------------------------------------------------------------------

    def _put(self, dataset: dict[str, Any], keep_sorted: bool = False) -> None:
        identifier = dataset["id"]
        if identifier not in self._by_id:
            if keep_sorted:
                bisect.insort(self._ids, identifier)
            else:
                self._ids.append(identifier)
        self._by_id[identifier] = dataset
        self._json[identifier] = json.dumps(dataset).encode()
        self._id_of_name[dataset["name"]] = identifier

    def apply(self, change: Mapping[str, Any]) -> None:
        """Remove, add and modify datasets by index (the modified time is now); restore
        brings datasets back as first generated, with their old modified time (a
        dataset made public again by a database restore, or hidden from search a while)."""
        for index in change.get("remove", []):
            identifier = dataset_id(self.spec, index)
            if identifier in self._by_id:
                dataset = self._by_id.pop(identifier)
                del self._json[identifier]
                self._id_of_name.pop(dataset["name"], None)
                self._ids.pop(bisect.bisect_left(self._ids, identifier))
        for index in change.get("restore", []):
            self._put(make_dataset(self.spec, index), keep_sorted=True)
        now = _iso(datetime.now(timezone.utc))
        for index in change.get("add", []):
            self._put(make_dataset(self.spec, index, 0, now), keep_sorted=True)
        for index in change.get("modify", []):
            version = self._versions[index] = self._versions.get(index, 0) + 1
            self._put(make_dataset(self.spec, index, version, now), keep_sorted=True)

    def after_search_call(self) -> None:
        self.search_calls += 1
        for change in self.spec.churn:
            if change.get("after_search_calls") == self.search_calls:
                self.apply(change)

    @property
    def count(self) -> int:
        return len(self._ids)

    # -- actions ----------------------------------------------------------------------------

    def show(self, ref: str) -> bytes | None:
        identifier = ref if ref in self._by_id else self._id_of_name.get(ref)
        return self._json.get(identifier) if identifier else None

    def names(self, offset: int, limit: int | None) -> list[str]:
        names = sorted(self._id_of_name)
        return names[offset:] if limit is None else names[offset:offset + limit]

    def search(self, params: Mapping[str, str]) -> bytes:
        """The JSON of package_search's result (raises SearchError, ValueError)."""
        q = (params.get("q") or "").strip()
        if q not in ("", "*:*", '""'):
            raise SearchError(f"the simulated portal only answers q=*:*, not {q!r}")
        low, high = 0, len(self._ids)
        filters = []
        for clause in _CLAUSE.findall(params.get("fq") or ""):
            low, high = self._filter(clause, low, high, filters)
        ids = [i for i in self._ids[low:high] if all(f(self._by_id[i]) for f in filters)]
        sort = (params.get("sort") or "score desc, metadata_modified desc").strip()
        if sort == "id desc":
            ids.reverse()
        elif sort in ("score desc, metadata_modified desc", "metadata_modified desc"):
            ids.sort(key=lambda i: self._by_id[i]["metadata_modified"], reverse=True)
        elif sort != "id asc":
            raise SearchError(f"the simulated portal cannot sort by {sort!r}")
        rows = int(params["rows"]) if params.get("rows") not in (None, "") else 10
        start = int(params["start"]) if params.get("start") not in (None, "") else 0
        if rows < 0 or start < 0:
            raise ValueError("rows and start must be natural numbers")
        page = ids[start:start + min(rows, self.spec.rows_max)]
        fl = [f for f in re.split(r"[,\s]+", params.get("fl") or "") if f]
        if fl and self.spec.honours_fl:
            results = b",".join(json.dumps({f: self._by_id[i].get(f) for f in fl}).encode() for i in page)
        else:
            results = b",".join(self._json[i] for i in page)
        return (b'{"count": ' + str(len(ids)).encode() + b', "facets": {}, "results": [' + results
                + b'], "sort": ' + json.dumps(sort).encode() + b', "search_facets": {}}')

    def _filter(self, clause: str, low: int, high: int, filters: list) -> tuple[int, int]:
        match = _RANGE.match(clause)
        if match:
            sign, name, open_, start, end, close = match.groups()
            start, end = _unquote(start), _unquote(end)
            if sign == "-":
                raise SearchError(f"the simulated portal cannot exclude a range: {clause!r}")
            if name == "id":
                if start != "*":
                    low = max(low, (bisect.bisect_left if open_ == "[" else bisect.bisect_right)(self._ids, start))
                if end != "*":
                    high = min(high, (bisect.bisect_right if close == "]" else bisect.bisect_left)(self._ids, end))
                return low, max(low, high)
            if name == "metadata_modified":
                lo = None if start == "*" else _parse_time(start)
                hi = None if end == "*" else _parse_time(end)

                def in_range(dataset: dict[str, Any]) -> bool:
                    moment = _parse_time(dataset["metadata_modified"])
                    return ((lo is None or (moment >= lo if open_ == "[" else moment > lo))
                            and (hi is None or (moment <= hi if close == "]" else moment < hi)))
                filters.append(in_range)
                return low, high
        match = _TERM.match(clause)
        if match and match.group(2) in ("dataset_type", "type") and match.group(1) != "-":
            wanted = _unquote(match.group(3))
            filters.append(lambda dataset: dataset.get("type") == wanted)
            return low, high
        raise SearchError(f"the simulated portal does not understand the filter {clause!r}")
