"""The update handler: JSON and XML update messages, and the commit parameters.

JSON: an array of documents (what pysolr sends), or an object of commands
(`add`, `delete` by id or query, `commit`, `rollback`, `optimize`). XML: `<add><doc>`,
`<delete><id>/<query>`, `<commit/>`, `<optimize/>`, `<rollback/>`, alone or inside
`<update>`. URL parameters `commit`, `softCommit`, `optimize` and `commitWithin` apply
after the message, as in Solr.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from .errors import SolrError
from .index import Index
from .search import TRUE_WORDS, Params


def _json_commands(pairs: list[tuple[str, Any]], index: Index) -> None:
    for command, body in pairs:
        if command == "add":
            doc = body.get("doc") if isinstance(body, dict) and "doc" in body else body
            docs = doc if isinstance(doc, list) else [doc]
            if not all(isinstance(d, dict) for d in docs):
                raise SolrError(400, "Expected a document object in 'add'")
            index.add(docs)
        elif command == "delete":
            items = body if isinstance(body, list) else [body]
            for item in items:
                if isinstance(item, dict) and "query" in item:
                    index.delete_by_query(str(item["query"]))
                elif isinstance(item, dict) and "id" in item:
                    index.delete_by_id([item["id"]])
                else:
                    index.delete_by_id([item])
        elif command in ("commit", "optimize"):
            index.commit()
        elif command == "rollback":
            index.rollback()
        else:
            raise SolrError(400, f"Unknown command '{command}' at [{command}]")


class _Pairs(list):
    """A JSON object as its (key, value) pairs: update commands may repeat a key."""


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {key: _plain(v) for key, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def apply_json(index: Index, body: bytes) -> None:
    try:
        message = json.loads(body.decode("utf-8"), object_pairs_hook=_Pairs)
    except ValueError as error:
        raise SolrError(400, f"Cannot parse provided JSON: {error}") from None
    if isinstance(message, _Pairs):
        _json_commands([(key, _plain(value)) for key, value in message], index)
    elif isinstance(message, list):
        if not all(isinstance(item, _Pairs) for item in message):
            raise SolrError(400, "Expected an array of documents")
        index.add([_plain(item) for item in message])
    else:
        raise SolrError(400, "Expected an array of documents or an object of commands")


def apply_xml(index: Index, body: bytes) -> None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise SolrError(400, f"Unexpected XML in update message: {error}") from None
    commands = list(root) if root.tag == "update" else [root]
    for element in commands:
        if element.tag == "add":
            docs = []
            for doc_element in element.findall("doc"):
                doc: dict[str, Any] = {}
                for field in doc_element.findall("field"):
                    name = field.get("name")
                    if field.get("null") == "true":
                        continue
                    value = field.text or ""
                    if name in doc:
                        existing = doc[name]
                        doc[name] = (existing if isinstance(existing, list) else [existing]) + [value]
                    else:
                        doc[name] = value
                docs.append(doc)
            index.add(docs)
        elif element.tag == "delete":
            for child in element:
                if child.tag == "query":
                    index.delete_by_query(child.text or "")
                elif child.tag == "id":
                    index.delete_by_id([child.text or ""])
        elif element.tag in ("commit", "optimize"):
            index.commit()
        elif element.tag == "rollback":
            index.rollback()
        else:
            raise SolrError(400, f"Unexpected <{element.tag}> in update message")


def handle_update(index: Index, params: Params, body: bytes, content_type: str) -> dict[str, Any]:
    stripped = body.lstrip()
    if stripped:
        if "json" in content_type or stripped[:1] in (b"[", b"{"):
            apply_json(index, body)
        else:
            apply_xml(index, body)
    if any((params.get(name) or "").lower() in TRUE_WORDS for name in ("commit", "softCommit", "optimize")):
        index.commit()
    elif params.get("commitWithin"):
        try:
            index.commit_within(int(params.get("commitWithin")))
        except ValueError:
            raise SolrError(400, f'For input string: "{params.get("commitWithin")}"') from None
    return {"responseHeader": {"rf": 1, "status": 0, "QTime": 0}}
