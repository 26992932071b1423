"""Executes GraphQL documents against a subset of GitHub's schema, GitHub's way.

What is faithful: aliases; fragments; partial results with an ``errors`` list whose
entries carry ``path``, ``locations``, ``message`` and, for GitHub's own errors,
``type`` (``NOT_FOUND`` for a repository that cannot be resolved,
``MISSING_PAGINATION_BOUNDARIES``, ``EXCESSIVE_PAGINATION``); null propagation through
non-null fields (a failed ``discussions`` nulls its whole repository); validation errors
(unknown field, missing sub-selection) that return no ``data`` at all;
``repository(followRenames: true)`` resolving old names; the point cost (connections
counted as GitHub documents it, divided by 100, at least 1) reported by ``rateLimit``.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.github_standin import world as world_model
from tests.github_standin.graphql_parser import (
    Document,
    EnumValue,
    Field,
    FragmentSpread,
    InlineFragment,
    Variable,
)

SCALARS = {"Int", "Float", "String", "Boolean", "ID", "DateTime", "URI"}
CONNECTIONS = {
    "LanguageConnection", "ReleaseConnection", "IssueConnection", "PullRequestConnection",
    "DiscussionConnection",
}
PROPAGATE = object()


class FieldError(Exception):
    def __init__(self, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.type = type_


class ValidationError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors


@dataclass
class Conn:
    """A connection: a total and a way to make its nodes."""

    name: str
    total: int
    make: Callable[[int], dict[str, Any]]
    args: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def page(self) -> tuple[list[dict[str, Any]], int]:
        first, last = self.args.get("first"), self.args.get("last")
        start = 0
        after = self.args.get("after")
        if isinstance(after, str):
            start = _cursor_index(after) + 1
        if first is not None:
            end = min(self.total, start + first)
        else:
            end = self.total
            start = max(start, end - (last or 0))
        return [self.make(i) for i in range(start, end)], start


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _cursor_index(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError):
        raise FieldError(f"`{cursor}` does not appear to be a valid cursor.") from None


@dataclass
class Context:
    world: world_model.World
    login: str
    rate_limit: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _repository(parent: Any, args: dict[str, Any], ctx: Context, f: Field) -> Any:
    owner, name = args.get("owner"), args.get("name")
    repo, renamed = ctx.world.find(owner or "", name or "", follow_renames=args.get("followRenames", True))
    if renamed and not repo.get("graphql_follows_rename", True):
        repo = None
    if repo is None or repo["state"] != "ok":
        raise FieldError(f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND")
    return repo


def _license(repo: dict[str, Any]) -> dict[str, Any] | None:
    spdx = repo["license"]
    if spdx is None:
        return None
    if spdx == "NOASSERTION":
        return {"spdxId": "NOASSERTION", "key": "other", "name": "Other"}
    return {"spdxId": spdx, "key": spdx.lower(), "name": spdx}


def _states(args: dict[str, Any]) -> set[str]:
    states = args.get("states")
    if states is None:
        return {"OPEN", "CLOSED", "MERGED"}
    if not isinstance(states, list):
        states = [states]
    return {s.name if isinstance(s, EnumValue) else str(s) for s in states}


def _languages(repo: dict[str, Any], args: dict[str, Any]) -> Conn:
    items = sorted(repo["languages"].items(), key=lambda kv: -kv[1])
    order = args.get("orderBy")
    if isinstance(order, dict) and isinstance(order.get("direction"), EnumValue) and order["direction"].name == "ASC":
        items.reverse()
    return Conn(
        "languages", len(items), lambda i: {"name": items[i][0], "size": items[i][1]}, args,
        {"totalSize": sum(repo["languages"].values())},
    )


def _releases(repo: dict[str, Any], args: dict[str, Any]) -> Conn:
    releases = world_model.visible_releases(repo)
    latest = world_model.latest_release(repo)
    return Conn("releases", len(releases), lambda i: _release(releases[i], latest), args)


def _release(release: dict[str, Any] | None, latest: dict[str, Any] | None) -> dict[str, Any] | None:
    if release is None:
        return None
    return {
        "tagName": release["tag"], "name": release.get("name") or release["tag"],
        "createdAt": release["created_at"], "publishedAt": release.get("published_at"),
        "isPrerelease": bool(release.get("prerelease")), "isDraft": False, "isLatest": release is latest,
    }


def _counted(name: str, total: int, args: dict[str, Any], title: str) -> Conn:
    return Conn(name, total, lambda i: {"number": total - i, "title": f"{title} {total - i}"}, args)


def _key(value: str) -> Callable[[Any, dict[str, Any], Context, Field], Any]:
    return lambda parent, args, ctx, f: parent.get(value) if isinstance(parent, dict) else None


R = Callable[[Any, dict[str, Any], Context, Field], Any]


def _page_args(extra: dict[str, Any]) -> dict[str, Any]:
    return {"first": None, "last": None, "after": None, "before": None, **extra}


def _repo(fn: Callable[[dict[str, Any], dict[str, Any]], Any]) -> R:
    return lambda repo, args, ctx, f: fn(repo, args)


SCHEMA: dict[str, dict[str, tuple[str, dict[str, Any], R]]] = {
    "Query": {
        "repository": ("Repository", {"owner": None, "name": None, "followRenames": True}, _repository),
        "rateLimit": ("RateLimit", {"dryRun": False}, lambda p, a, ctx, f: ctx.rate_limit),
        "viewer": ("User!", {}, lambda p, a, ctx, f: {"login": ctx.login}),
    },
    "RateLimit": {k: (t, {}, _key(k)) for k, t in (
        ("cost", "Int!"), ("limit", "Int!"), ("nodeCount", "Int!"), ("remaining", "Int!"),
        ("resetAt", "DateTime!"), ("used", "Int!"),
    )},
    "User": {"login": ("String!", {}, _key("login"))},
    "RepositoryOwner": {"login": ("String!", {}, _key("login"))},
    "License": {"spdxId": ("String", {}, _key("spdxId")), "key": ("String!", {}, _key("key")),
                "name": ("String!", {}, _key("name"))},
    "Ref": {"name": ("String!", {}, _key("name"))},
    "Language": {"name": ("String!", {}, _key("name")), "color": ("String", {}, _key("color"))},
    "LanguageEdge": {"size": ("Int!", {}, _key("size")), "node": ("Language!", {}, lambda p, a, c, f: p),
                     "cursor": ("String!", {}, _key("cursor"))},
    "Release": {k: (t, {}, _key(k)) for k, t in (
        ("tagName", "String!"), ("name", "String"), ("createdAt", "DateTime!"), ("publishedAt", "DateTime"),
        ("isPrerelease", "Boolean!"), ("isDraft", "Boolean!"), ("isLatest", "Boolean!"),
    )},
    "Issue": {"number": ("Int!", {}, _key("number")), "title": ("String!", {}, _key("title"))},
    "PullRequest": {"number": ("Int!", {}, _key("number")), "title": ("String!", {}, _key("title"))},
    "Discussion": {"number": ("Int!", {}, _key("number")), "title": ("String!", {}, _key("title"))},
    "PageInfo": {k: (t, {}, _key(k)) for k, t in (
        ("hasNextPage", "Boolean!"), ("hasPreviousPage", "Boolean!"), ("endCursor", "String"),
        ("startCursor", "String"),
    )},
    "Repository": {
        "id": ("ID!", {}, _repo(lambda r, a: base64.b64encode(f"010:Repository{r['id']}".encode()).decode())),
        "databaseId": ("Int", {}, _repo(lambda r, a: r["id"])),
        "name": ("String!", {}, _repo(lambda r, a: r["name"])),
        "nameWithOwner": ("String!", {}, _repo(lambda r, a: world_model.full_name(r))),
        "url": ("URI!", {}, _repo(lambda r, a: f"https://github.com/{r['owner']}/{r['name']}")),
        "owner": ("RepositoryOwner!", {}, _repo(lambda r, a: {"login": r["owner"]})),
        "description": ("String", {}, _repo(lambda r, a: r["description"])),
        "stargazerCount": ("Int!", {}, _repo(lambda r, a: r["stars"])),
        "forkCount": ("Int!", {}, _repo(lambda r, a: r["forks"])),
        "isArchived": ("Boolean!", {}, _repo(lambda r, a: r["archived"])),
        "isDisabled": ("Boolean!", {}, _repo(lambda r, a: False)),
        "isFork": ("Boolean!", {}, _repo(lambda r, a: r["fork"])),
        "isPrivate": ("Boolean!", {}, _repo(lambda r, a: False)),
        "isEmpty": ("Boolean!", {}, _repo(lambda r, a: r["default_branch"] is None)),
        "licenseInfo": ("License", {}, _repo(lambda r, a: _license(r))),
        "diskUsage": ("Int", {}, _repo(lambda r, a: r["size"])),
        "pushedAt": ("DateTime", {}, _repo(lambda r, a: r["pushed_at"])),
        "createdAt": ("DateTime!", {}, _repo(lambda r, a: r["created_at"])),
        "updatedAt": ("DateTime!", {}, _repo(lambda r, a: r["updated_at"] or r["pushed_at"])),
        "defaultBranchRef": ("Ref", {}, _repo(lambda r, a: {"name": r["default_branch"]} if r["default_branch"] else None)),
        "primaryLanguage": ("Language", {}, _repo(
            lambda r, a: {"name": max(r["languages"], key=r["languages"].get)} if r["languages"] else None)),
        "languages": ("LanguageConnection", _page_args({"orderBy": None}), _repo(_languages)),
        "releases": ("ReleaseConnection!", _page_args({"orderBy": None}), _repo(_releases)),
        "latestRelease": ("Release", {}, _repo(
            lambda r, a: _release(world_model.latest_release(r), world_model.latest_release(r)))),
        "issues": ("IssueConnection!", _page_args({"states": None, "orderBy": None, "labels": None}), _repo(
            lambda r, a: _counted("issues", r["open_issues"] if "OPEN" in _states(a) else 0, a, "Issue"))),
        "pullRequests": ("PullRequestConnection!", _page_args({"states": None, "orderBy": None, "baseRefName": None}),
                         _repo(lambda r, a: _counted(
                             "pullRequests", r["open_pulls"] if "OPEN" in _states(a) else 0, a, "Pull request"))),
        "discussions": ("DiscussionConnection!", _page_args({"orderBy": None, "categoryId": None}), _repo(
            lambda r, a: _counted("discussions", r["discussions"], a, "Discussion"))),
        "hasDiscussionsEnabled": ("Boolean!", {}, _repo(lambda r, a: r["has_discussions"])),
    },
}




def _connection_fields(node_type: str, edge_type: str | None = None) -> dict[str, tuple[str, dict[str, Any], R]]:
    def nodes(conn: Conn, args: dict[str, Any], ctx: Context, f: Field) -> list[Any]:
        return conn.page()[0]

    def edges(conn: Conn, args: dict[str, Any], ctx: Context, f: Field) -> list[Any]:
        items, start = conn.page()
        return [{**item, "cursor": _cursor(start + i), "__node": item} for i, item in enumerate(items)]

    def page_info(conn: Conn, args: dict[str, Any], ctx: Context, f: Field) -> dict[str, Any]:
        items, start = conn.page()
        end = start + len(items)
        return {
            "hasNextPage": end < conn.total, "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if items else None, "endCursor": _cursor(end - 1) if items else None,
        }

    fields: dict[str, tuple[str, dict[str, Any], R]] = {
        "totalCount": ("Int!", {}, lambda conn, a, c, f: conn.total),
        "nodes": (f"[{node_type}]", {}, nodes),
        "pageInfo": ("PageInfo!", {}, page_info),
    }
    if edge_type:
        fields["edges"] = (f"[{edge_type}]", {}, edges)
    return fields


SCHEMA["LanguageConnection"] = {
    **_connection_fields("Language", "LanguageEdge"),
    "totalSize": ("Int!", {}, lambda conn, a, c, f: conn.extra["totalSize"]),
}
SCHEMA["ReleaseConnection"] = _connection_fields("Release")
SCHEMA["IssueConnection"] = _connection_fields("Issue")
SCHEMA["PullRequestConnection"] = _connection_fields("PullRequest")
SCHEMA["DiscussionConnection"] = _connection_fields("Discussion")


def _base(type_ref: str) -> str:
    return type_ref.strip("[]!")


# -- validation ------------------------------------------------------------------------------


def validate(document: Document, operation_label: str) -> None:
    errors: list[dict[str, Any]] = []
    for operation in document.operations:
        if operation.kind != "query":
            errors.append({"message": f"Only queries are served by this stand-in, not {operation.kind}"})
            continue
        _validate_selections(document, operation.selections, "Query", [operation_label], errors, set())
    for name, (type_condition, selections) in document.fragments.items():
        if type_condition not in SCHEMA:
            errors.append({"message": f"No such type {type_condition}, so it can't be a fragment condition",
                           "path": [f"fragment {name}"], "extensions": {"code": "undefinedType", "typeName": type_condition}})
    if errors:
        raise ValidationError(errors)


def _validate_selections(document: Document, selections: list[Any], type_name: str, path: list[Any],
                         errors: list[dict[str, Any]], seen_fragments: set[str]) -> None:
    for selection in selections:
        if isinstance(selection, FragmentSpread):
            if selection.name not in document.fragments:
                errors.append({"path": path, "extensions": {"code": "undefinedFragment", "fragmentName": selection.name},
                               "locations": [{"line": selection.line, "column": selection.column}],
                               "message": f"Fragment {selection.name} was used, but not defined"})
                continue
            if selection.name in seen_fragments:
                continue
            type_condition, fragment_selections = document.fragments[selection.name]
            if type_condition == type_name:
                _validate_selections(document, fragment_selections, type_name, path + [f"... {selection.name}"],
                                     errors, seen_fragments | {selection.name})
            continue
        if isinstance(selection, InlineFragment):
            _validate_selections(document, selection.selections, selection.type_condition or type_name, path,
                                 errors, seen_fragments)
            continue
        if selection.name == "__typename":
            continue
        fields = SCHEMA.get(type_name, {})
        location = [{"line": selection.line, "column": selection.column}]
        field_path = path + [selection.response_key]
        if selection.name not in fields:
            errors.append({"path": field_path, "extensions": {"code": "undefinedField", "typeName": type_name,
                                                              "fieldName": selection.name},
                           "locations": location, "message": f"Field '{selection.name}' doesn't exist on type '{type_name}'"})
            continue
        field_type, arg_defaults, _ = fields[selection.name]
        for arg in selection.arguments:
            if arg not in arg_defaults:
                errors.append({"path": field_path + [arg], "extensions": {"code": "argumentNotAccepted", "name": selection.name,
                                                                         "typeName": "Field", "argumentName": arg},
                               "locations": location, "message": f"Field '{selection.name}' doesn't accept argument '{arg}'"})
        base = _base(field_type)
        if base in SCALARS:
            if selection.selections:
                errors.append({"path": field_path, "extensions": {"code": "selectionMismatch", "nodeName": f"field '{selection.name}'"},
                               "locations": location,
                               "message": f"Selections can't be made on scalars (field '{selection.name}' returns {base} but has selections [...])"})
        elif not selection.selections:
            errors.append({"path": field_path, "extensions": {"code": "selectionMismatch", "nodeName": f"field '{selection.name}'",
                                                              "typeName": base},
                           "locations": location,
                           "message": f"Field must have selections (field '{selection.name}' returns {base} but has no selections. Did you mean '{selection.name} {{ ... }}'?)"})
        else:
            _validate_selections(document, selection.selections, base, field_path, errors, seen_fragments)
        if type_name == "Query" and selection.name == "repository":
            for required in ("owner", "name"):
                if required not in selection.arguments:
                    errors.append({"path": field_path, "extensions": {"code": "missingRequiredArguments",
                                                                      "arguments": required},
                                   "locations": location,
                                   "message": f"Field 'repository' is missing required arguments: {required}"})


# -- cost --------------------------------------------------------------------------------------


def cost(document: Document, variables: dict[str, Any]) -> int:
    """GitHub's documented cost: requests needed for every connection / 100, at least 1."""
    total = 0

    def walk(selections: list[Any], type_name: str, multiplier: int, fragments_seen: frozenset[str]) -> None:
        nonlocal total
        for selection in selections:
            if isinstance(selection, FragmentSpread):
                if selection.name in document.fragments and selection.name not in fragments_seen:
                    walk(document.fragments[selection.name][1], type_name, multiplier, fragments_seen | {selection.name})
                continue
            if isinstance(selection, InlineFragment):
                walk(selection.selections, selection.type_condition or type_name, multiplier, fragments_seen)
                continue
            fields = SCHEMA.get(type_name, {})
            if selection.name not in fields or not selection.selections:
                continue
            base = _base(fields[selection.name][0])
            inner = multiplier
            if base in CONNECTIONS:
                total += multiplier
                args = {k: _value(v, variables) for k, v in selection.arguments.items()}
                inner = multiplier * int(args.get("first") or args.get("last") or 1)
            walk(selection.selections, base, inner, fragments_seen)

    for operation in document.operations:
        walk(operation.selections, "Query", 1, frozenset())
    return max(1, int(total / 100 + 0.5))


# -- execution ----------------------------------------------------------------------------------


def _value(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, Variable):
        return variables.get(value.name)
    if isinstance(value, list):
        return [_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _value(v, variables) for k, v in value.items()}
    return value


def execute(document: Document, ctx: Context) -> dict[str, Any] | None:
    operation = document.operations[0]
    for name, (_, default) in operation.variables.items():
        ctx.variables.setdefault(name, default)
    data = _selections(document, operation.selections, "Query", None, [], ctx)
    return None if data is PROPAGATE else data


def _collect(document: Document, selections: list[Any], type_name: str) -> list[Field]:
    fields: list[Field] = []
    for selection in selections:
        if isinstance(selection, FragmentSpread):
            type_condition, inner = document.fragments[selection.name]
            if type_condition == type_name:
                fields += _collect(document, inner, type_name)
        elif isinstance(selection, InlineFragment):
            if selection.type_condition in (None, type_name):
                fields += _collect(document, selection.selections, type_name)
        else:
            fields.append(selection)
    return fields


def _selections(document: Document, selections: list[Any], type_name: str, obj: Any, path: list[Any], ctx: Context) -> Any:
    result: dict[str, Any] = {}
    for f in _collect(document, selections, type_name):
        key = f.response_key
        if f.name == "__typename":
            result[key] = type_name
            continue
        field_type, arg_defaults, resolver = SCHEMA[type_name][f.name]
        args = {**arg_defaults, **{k: _value(v, ctx.variables) for k, v in f.arguments.items()}}
        field_path = path + [key]
        try:
            if isinstance(obj, dict) and f.name in obj.get("graphql_field_errors", {}):
                raise FieldError(obj["graphql_field_errors"][f.name])
            value = resolver(obj, args, ctx, f)
            if isinstance(value, Conn):
                _check_pagination(value, f)
        except FieldError as error:
            entry: dict[str, Any] = {}
            if error.type:
                entry["type"] = error.type
            entry.update({"path": field_path, "locations": [{"line": f.line, "column": f.column}],
                          "message": error.message})
            ctx.errors.append(entry)
            value = None
        completed = _complete(document, field_type, f, value, field_path, ctx)
        if completed is PROPAGATE:
            return PROPAGATE
        result[key] = completed
    return result


def _check_pagination(conn: Conn, f: Field) -> None:
    wants_nodes = any(isinstance(s, Field) and s.name in ("nodes", "edges") for s in f.selections or [])
    first, last = conn.args.get("first"), conn.args.get("last")
    if wants_nodes and first is None and last is None:
        raise FieldError(
            f"You must provide a `first` or `last` value to properly paginate the `{conn.name}` connection.",
            "MISSING_PAGINATION_BOUNDARIES",
        )
    for bound_name, bound in (("first", first), ("last", last)):
        if bound is not None and (bound > 100 or bound < 0):
            raise FieldError(
                f"Requesting {bound} records on the `{conn.name}` connection exceeds the `{bound_name}` limit of 100 records.",
                "EXCESSIVE_PAGINATION",
            )


def _complete(document: Document, type_ref: str, f: Field, value: Any, path: list[Any], ctx: Context) -> Any:
    non_null = type_ref.endswith("!")
    inner = type_ref[:-1] if non_null else type_ref
    if value is None:
        return PROPAGATE if non_null else None
    if inner.startswith("["):
        items = []
        for index, item in enumerate(value):
            completed = _complete(document, inner[1:-1], f, item, path + [index], ctx)
            if completed is PROPAGATE:
                return PROPAGATE if non_null else None
            items.append(completed)
        return items
    if inner in SCALARS:
        return value
    if inner == "Language" and isinstance(value, dict) and "__node" in value:
        value = value["__node"]
    sub = _selections(document, f.selections or [], inner, value, path, ctx)
    if sub is PROPAGATE:
        return PROPAGATE if non_null else None
    return sub
