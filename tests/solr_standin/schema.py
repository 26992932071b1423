"""A Solr schema.xml read into what the stand-in needs: field types, fields, copy fields.

Only the parts of the schema language that CKAN's schema uses are understood: field
types by class (string, boolean, point numbers and dates, text with analyzers), fields
and dynamic fields with indexed/stored/multiValued/required/default, the unique key and
copyField rules. The schema decides how a value is matched, sorted, faceted and returned,
as it does in Solr.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import xml.etree.ElementTree as ET

from .analysis import Analyzer, KEYWORD_ANALYZER, analyzer_from_xml
from .errors import SolrError

# The kind of value a field type holds, from its Solr class.
KIND_BY_CLASS = {
    "solr.StrField": "string",
    "solr.BoolField": "bool",
    "solr.IntPointField": "int",
    "solr.LongPointField": "int",
    "solr.TrieIntField": "int",
    "solr.TrieLongField": "int",
    "solr.FloatPointField": "float",
    "solr.DoublePointField": "float",
    "solr.TrieFloatField": "float",
    "solr.TrieDoubleField": "float",
    "solr.DatePointField": "date",
    "solr.TrieDateField": "date",
    "solr.TextField": "text",
    "solr.BinaryField": "binary",
}


@dataclasses.dataclass(frozen=True)
class FieldType:
    name: str
    kind: str  # string, bool, int, float, date, text or binary
    multi_valued: bool = False
    sort_missing_last: bool = False
    index_analyzer: Analyzer = KEYWORD_ANALYZER
    query_analyzer: Analyzer = KEYWORD_ANALYZER


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    indexed: bool = True
    stored: bool = True
    multi_valued: bool = False
    required: bool = False
    default: str | None = None

    @property
    def kind(self) -> str:
        return self.type.kind


def _bool_attr(element: ET.Element, name: str, default: bool) -> bool:
    value = element.get(name)
    return default if value is None else value.strip().lower() == "true"


class Schema:
    """The fields of one core, looked up by name as Solr does (exact, then dynamic)."""

    def __init__(self, name: str, version: str, unique_key: str,
                 fields: dict[str, Field], dynamic_fields: list[tuple[str, Field]],
                 copy_fields: list[tuple[str, str]]):
        self.name = name
        self.version = version
        self.unique_key = unique_key
        self._fields = fields
        # Solr tries the longest dynamic pattern first.
        self._dynamic = sorted(dynamic_fields, key=lambda item: -len(item[0]))
        self._copy_fields = copy_fields
        self._cache: dict[str, Field | None] = {}

    @classmethod
    def from_file(cls, path: str) -> Schema:
        with open(path, "rb") as handle:
            return cls.from_xml(handle.read())

    @classmethod
    def from_xml(cls, text: bytes | str) -> Schema:
        root = ET.fromstring(text)
        types: dict[str, FieldType] = {}
        for element in root.iter():
            if element.tag.lower() != "fieldtype":
                continue
            kind = KIND_BY_CLASS.get(element.get("class", ""), "string")
            index_analyzer = query_analyzer = KEYWORD_ANALYZER
            if kind == "text":
                analyzers = {a.get("type", "both"): analyzer_from_xml(a) for a in element.findall("analyzer")}
                index_analyzer = analyzers.get("index") or analyzers.get("both") or analyzer_from_xml(None)
                query_analyzer = analyzers.get("query") or analyzers.get("both") or index_analyzer
            types[element.get("name")] = FieldType(
                name=element.get("name"), kind=kind,
                multi_valued=_bool_attr(element, "multiValued", False),
                sort_missing_last=_bool_attr(element, "sortMissingLast", False),
                index_analyzer=index_analyzer, query_analyzer=query_analyzer)

        def make_field(element: ET.Element) -> Field:
            field_type = types.get(element.get("type"))
            if field_type is None:
                raise ValueError(f"field {element.get('name')!r} has unknown type {element.get('type')!r}")
            return Field(
                name=element.get("name"), type=field_type,
                indexed=_bool_attr(element, "indexed", True),
                stored=_bool_attr(element, "stored", True),
                multi_valued=_bool_attr(element, "multiValued", field_type.multi_valued),
                required=_bool_attr(element, "required", False),
                default=element.get("default"))

        fields = {e.get("name"): make_field(e) for e in root.iter("field")}
        dynamic = [(e.get("name"), make_field(e)) for e in root.iter("dynamicField")]
        copies = [(e.get("source"), e.get("dest")) for e in root.iter("copyField")]
        unique = root.find("uniqueKey")
        return cls(name=root.get("name", ""), version=root.get("version", ""),
                   unique_key=(unique.text or "").strip() if unique is not None else "id",
                   fields=fields, dynamic_fields=dynamic, copy_fields=copies)

    def field(self, name: str) -> Field | None:
        """The field definition for `name`, or None when the schema does not define it."""
        if name not in self._cache:
            found = self._fields.get(name)
            if found is None:
                for pattern, template in self._dynamic:
                    if fnmatch.fnmatchcase(name, pattern):
                        found = dataclasses.replace(template, name=name)
                        break
            self._cache[name] = found
        return self._cache[name]

    def require_field(self, name: str) -> Field:
        """The field definition for `name`; Solr's 400 error when it is not defined."""
        found = self.field(name)
        if found is None:
            raise SolrError(400, f"undefined field {name}")
        return found

    def copy_targets(self, source: str) -> list[str]:
        """Fields that receive a copy of `source` (copies do not chain, as in Solr)."""
        return [dest for pattern, dest in self._copy_fields
                if dest != source and fnmatch.fnmatchcase(source, pattern)]

    def defaulted_fields(self) -> list[Field]:
        return [f for f in self._fields.values() if f.default is not None]

    def required_fields(self) -> list[Field]:
        return [f for f in self._fields.values() if f.required]
