"""CKAN's Action API as versions 2.2 to 2.11 answer it (stdlib only).

Sources, all in github.com/ckan/ckan at the release tags:
- The envelope and the errors: ``ckan/controllers/api.py`` (Pylons, 2.2 to 2.8) and
  ``ckan/views/api.py`` (Flask, 2.9 to 2.11), ``action()``. Success is
  ``{"help": ..., "success": true, "result": ...}``; a failure is the HTTP status of the
  exception with ``{"help": ..., "error": {"__type": ..., "message": ...}, "success":
  false}``: NotAuthorized 403 "Authorization Error" ("Access denied[: detail]"),
  NotFound 404 "Not Found Error", ValidationError 409 "Validation Error" (one list of
  messages per field instead of "message"), SearchQueryError 400, SearchError 409
  "Search Error" ("Search error: %r" of the args), SearchIndexError 500; from 2.9 any
  other exception is a JSON 500 "Internal Server Error" (before, Pylons' HTML error
  page); from 2.10.5 an unreachable Solr is 500 "Search Connection Error". An unknown
  action is HTTP 400 whose JSON body is only a string: "Bad request - Action name not
  known: <name>". JSON is ``application/json;charset=utf-8``.
- ``help``: the action's docstring in 2.2; from 2.3 a URL
  ``<site_url scheme+host><root_path>/api/3/action/help_show?name=<action>``, built
  from ``ckan.site_url`` (``h.url_for(..., qualified=True)`` ->
  ``get_site_protocol_and_host``), not from the request's Host.
- Routes: ``/api/3/action/<name>`` and ``/api/action/<name>`` on every version
  (``/api{ver:/3|}/action/{logic_function}`` in 2.2's routing.py).
- ``status_show`` (``ckan/logic/action/get.py``): site_title, site_description,
  site_url, ckan_version, error_emails_to, locale_default, extensions
  (``config.get('ckan.plugins').split()`` up to 2.9, the list-typed option from 2.10).
  From 2.10 ``ckan_version`` is left out when ``ckan.hide_version`` is set.
- ``organization_list`` / ``group_list`` (``_group_or_org_list``): see
  :func:`list_rules`. ``package_list``: limit/offset honoured on every version, no cap.
  ``package_search``: ``rows`` at most 1000 on every version
  (``min(1000, rows)`` in lib/search/query.py, ``ckan.search.rows_max`` from 2.9).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

JSON_TYPE = "application/json;charset=utf-8"

#: Actions the world answers; any other name is "Action name not known".
ACTIONS = (
    "status_show", "package_search", "package_list", "package_show", "organization_list", "group_list",
    "site_read", "help_show",
)

_DOCSTRINGS = {
    "status_show": "Return a dictionary with information about the site's configuration.\n\n"
                   "    :rtype: dictionary\n\n    ",
    "package_search": "\n    Searches for packages satisfying a given search criteria.\n    ",
    "package_list": "Return a list of the names of the site's datasets (packages).\n    ",
    "package_show": "Return the metadata of a dataset (package) and its resources.\n    ",
    "organization_list": "Return a list of the names of the site's organizations.\n    ",
    "group_list": "Return a list of the names of the site's groups.\n    ",
    "site_read": "Return ``True``.\n    ",
    "help_show": "Return the help string for a particular API action.\n    ",
}


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.9.5"`` -> (2, 9, 5); suffixes such as ``a0`` or ``+dev`` are dropped."""
    numbers = []
    for part in str(text).split(".")[:3]:
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
    while len(numbers) < 3:
        numbers.append(0)
    return tuple(numbers)


@dataclass(frozen=True)
class ListRules:
    """How a version's organization_list / group_list treats limit and offset."""

    #: limit/offset are read at all (2.5.0+); before, every name comes back.
    paging: bool
    #: ckan.group_and_organization_list_max applies: without limit, or above it, a
    #: call returns at most this many names (2.7.10+ on 2.7, 2.8.7+ on 2.8, 2.9.0+).
    capped: bool
    #: 2.9.0 and 2.9.1 compare the query-string limit with an int (ckan/ckan#5789):
    #: on Python 3 any limit is a TypeError (JSON 500); on Python 2 a str is greater
    #: than any int, so any limit becomes the cap.
    limit_compare_bug: bool


def list_rules(version: str) -> ListRules:
    """Paging of ``_group_or_org_list`` by version (ckan/logic/action/get.py).

    - 2.2 to 2.4: no limit/offset parameters; the whole list, uncapped.
    - 2.5.0 to 2.7.9 and 2.8.0 to 2.8.6: limit/offset honoured; no cap, so without a
      limit the whole list comes back.
    - 2.7.10+, 2.8.7+, 2.9.0+: ``if limit is None or limit > max_limit: limit =
      max_limit`` with ``ckan.group_and_organization_list_max`` = 1000 (commit
      f7f081ec, ckan/ckan#4484, backported to 2.7.10 and 2.8.7).
    - 2.9.0, 2.9.1: that comparison uses the raw string (fixed in 2.9.2, #5789).
    """
    v = parse_version(version)
    paging = v >= (2, 5, 0)
    capped = (2, 7, 10) <= v < (2, 8, 0) or v >= (2, 8, 7)
    return ListRules(paging=paging, capped=capped, limit_compare_bug=(2, 9, 0) <= v < (2, 9, 2))


def default_python(version: str) -> int:
    return 3 if parse_version(version) >= (2, 9) else 2


def extensions_value(names: list[str], shape: str) -> Any:
    """status_show's ``extensions`` in a given shape; ``_MISSING`` leaves the key out."""
    if shape == "list":
        return list(names)
    if shape == "string":
        return " ".join(names)
    if shape == "dict":
        return {name: {"version": "1.0.0"} for name in names}
    if shape == "null":
        return None
    if shape == "missing":
        return _MISSING
    raise ValueError(f"unknown extensions shape {shape!r}")


_MISSING = object()


def normalized_extensions(names: list[str], shape: str) -> list[str] | None:
    """What a crawler records: sorted unique plugin names, None when not given."""
    if shape in ("missing", "null"):
        return None
    return sorted(set(names))


# -- the envelope ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = JSON_TYPE


def help_value(version: str, site_url: str, prefix: str, action: str) -> str:
    if parse_version(version) < (2, 3):
        return _DOCSTRINGS.get(action, "")
    match = re.match(r"^([a-z]+://[^/]+)", site_url or "")
    origin = match.group(1) if match else ""
    return f"{origin}{prefix}/api/3/action/help_show?name={action}"


def ok_body(help_text: str, result_json: bytes) -> bytes:
    """The success envelope around an already serialised result."""
    return b'{"help": ' + json.dumps(help_text).encode() + b', "success": true, "result": ' + result_json + b"}"


def error_answer(status: int, help_text: str, error: Mapping[str, Any]) -> Answer:
    body = json.dumps({"help": help_text, "error": dict(error), "success": False})
    return Answer(status, body.encode())


def bad_request(message: str) -> Answer:
    """``_finish_bad_request``: HTTP 400, the body a JSON string."""
    return Answer(400, json.dumps(f"Bad request - {message}").encode())


class CkanError(Exception):
    """An action's failure, answered as CKAN's error envelope."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        super().__init__(error)
        self.status = status
        self.error = dict(error)


def validation_error(field: str, message: str) -> CkanError:
    return CkanError(409, {field: [message], "__type": "Validation Error"})


def internal_error(version: str) -> CkanError | None:
    """An unhandled exception: JSON 500 from 2.9 on; None before (Pylons' HTML page)."""
    if parse_version(version) >= (2, 9):
        return CkanError(500, {"__type": "Internal Server Error", "message": "Internal Server Error"})
    return None


class UnhandledError(Exception):
    """An unhandled exception on a version that answers it with an HTML 500 page."""


# -- actions ----------------------------------------------------------------------------------


def _natural(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(name, "Invalid integer") from None
    if value < 0:
        raise validation_error(name, "Must be a natural number")
    return value


def name_list_window(total: int, params: Mapping[str, str], version: str, list_max: int,
                     python: int | None = None) -> tuple[int, int]:
    """The [start, end) slice organization_list / group_list returns on ``version``."""
    rules = list_rules(version)
    if not rules.paging:
        return 0, total
    raw_limit = params.get("limit")
    if raw_limit or params.get("offset"):
        # CKAN validates only when limit or offset is truthy (a non-empty string).
        _natural(params, "limit")
        _natural(params, "offset")
    limit = int(raw_limit) if raw_limit else None
    offset = int(params["offset"]) if params.get("offset") else 0
    if rules.capped:
        if raw_limit == "":
            # int('') in ``int(limit) > max_limit``: an unhandled ValueError.
            raise internal_error(version) or UnhandledError("ValueError")
        if rules.limit_compare_bug and raw_limit is not None:
            if (python or default_python(version)) == 3:
                raise internal_error(version) or UnhandledError("TypeError")
            limit = list_max  # Python 2: any str > any int
        elif limit is None or limit > list_max:
            limit = list_max
    start = min(offset, total)
    if raw_limit is not None and raw_limit != "" or rules.capped:
        # ``if limit: query.limit(limit)``: the raw "0" is truthy, so LIMIT 0.
        return start, min(total, start + (limit or 0))
    return start, total


def names(kind: str, start: int, end: int) -> list[str]:
    width = 6 if kind == "dataset" else 5
    return [f"{kind}-{i:0{width}d}" for i in range(start + 1, end + 1)]


def _group_dict(kind: str, name: str) -> dict[str, Any]:
    number = name.rsplit("-", 1)[1]
    return {
        "id": f"{kind[:3]}{number}-0000-4000-8000-000000000000",
        "name": name,
        "title": f"{kind.title()} {number}",
        "display_name": f"{kind.title()} {number}",
        "type": kind,
        "is_organization": kind == "organization",
        "state": "active",
        "package_count": 0,
    }


def not_found() -> CkanError:
    return CkanError(404, {"__type": "Not Found Error", "message": "Not found"})


def run_dataset_action(store: Any, action: str, params: Mapping[str, str]) -> bytes:
    """The serialised ``result`` of package_search, package_show or package_list on a
    portal with datasets (a tests.world.datasets.DatasetStore), or CkanError."""
    from tests.world.datasets import SearchError

    if action == "package_show":
        found = store.show(params.get("id") or "")
        if found is None:
            raise not_found()
        return found
    if action == "package_list":
        limit, offset = _natural(params, "limit"), _natural(params, "offset") or 0
        return json.dumps(store.names(offset, limit if params.get("limit") else None)).encode()
    _natural(params, "rows")
    _natural(params, "start")
    try:
        return store.search(params)
    except SearchError as error:
        raise CkanError(409, {"__type": "Search Error", "message": f"Search error: {error}"}) from None
    finally:
        store.after_search_call()


def status_show(ckan: Any) -> dict[str, Any]:
    version = parse_version(ckan.version)
    result: dict[str, Any] = {
        "site_title": ckan.site_title,
        "site_description": ckan.site_description,
        "site_url": ckan.site_url,
        "ckan_version": ckan.version,
        "error_emails_to": ckan.error_emails_to,
        "locale_default": ckan.locale_default,
    }
    if ckan.hide_version and version >= (2, 10):
        del result["ckan_version"]
    extensions = extensions_value(ckan.extensions, ckan.extensions_shape)
    if extensions is not _MISSING:
        result["extensions"] = extensions
    return result


def run_action(ckan: Any, action: str, params: Mapping[str, str]) -> Any:
    """The ``result`` of an action, or CkanError / UnhandledError.

    ``ckan`` is a :class:`tests.world.spec.CkanSpec` (duck-typed to keep this module
    free of the spec's imports).
    """
    if action == "status_show":
        return status_show(ckan)
    if action == "site_read":
        return True
    if action == "help_show":
        name = params.get("name", "")
        if name not in _DOCSTRINGS:
            raise CkanError(404, {"__type": "Not Found Error", "message": "Not found: Action function not found"})
        return _DOCSTRINGS[name]
    if action == "package_show":
        raise not_found()
    if action == "package_list":
        limit, offset = _natural(params, "limit"), _natural(params, "offset") or 0
        start = min(offset, ckan.num_datasets)
        end = ckan.num_datasets if not params.get("limit") else min(ckan.num_datasets, start + (limit or 0))
        return names("dataset", start, end)
    if action == "package_search":
        rows = _natural(params, "rows")
        start = _natural(params, "start") or 0
        rows = 10 if rows is None else min(rows, 1000)
        end = min(ckan.num_datasets, start + rows)
        results = [{"id": f"{n[-6:]}00-0000-4000-8000-000000000000", "name": n, "title": n.replace("-", " ").title(),
                    "type": "dataset", "state": "active", "private": False, "num_resources": 0}
                   for n in names("dataset", min(start, end), end)]
        return {"count": ckan.num_datasets, "facets": {}, "results": results,
                "sort": "score desc, metadata_modified desc", "search_facets": {}}
    if action in ("organization_list", "group_list"):
        kind = "organization" if action == "organization_list" else "group"
        total = ckan.num_organizations if kind == "organization" else ckan.num_groups
        all_fields = str(params.get("all_fields", "")).lower() in ("true", "1", "yes", "on")
        list_max = 25 if all_fields else ckan.list_max
        start, end = name_list_window(total, params, ckan.version, list_max, ckan.python)
        page = names(kind, start, end)
        return [_group_dict(kind, n) for n in page] if all_fields else page
    raise KeyError(action)
