"""One GraphQL query for a batch of repositories, and its answer split per repository.

Each repository gets an alias (``r0``, ``r1``...) on ``repository(owner:, name:)``;
the selection is a fragment made of the metric groups in ``SELECTIONS``, so that a
repository whose answer failed on one field can be asked again without that field.

GitHub answers HTTP 200 with ``data`` *and* a partial ``errors`` list when some aliases
fail: a deleted repository is ``null`` in ``data`` with an error
``{"type": "NOT_FOUND", "path": ["r3"], ...}``; a field that failed has a longer path
(``["r3", "discussions"]``), and because most Repository fields are non-null, the whole
alias may be ``null`` because of it. ``split_answer`` keeps these apart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ckancrawl.failures import FetchError
from ckancrawl.github.repo_urls import RepoRef

#: Metric group -> GraphQL selection on Repository. "identity" is always asked.
SELECTIONS: dict[str, str] = {
    "identity": "databaseId nameWithOwner url",
    "default_branch": "defaultBranchRef { name }",
    "stars": "stargazerCount",
    "forks_count": "forkCount",
    "is_archived": "isArchived",
    "license": "licenseInfo { spdxId }",
    "repository_size": "diskUsage",
    "last_update": "pushedAt",
    "language_stats": (
        "languages(first: 100, orderBy: {field: SIZE, direction: DESC}) "
        "{ totalSize edges { size node { name } } }"
    ),
    "total_releases": "releases { totalCount }",
    "latest_release": "latestRelease { tagName publishedAt }",
    "open_issues": "issues(states: OPEN) { totalCount }",
    "open_pull_requests": "pullRequests(states: OPEN) { totalCount }",
    "discussions": "hasDiscussionsEnabled discussions { totalCount }",
}

#: GraphQL field name -> the metric group it belongs to (to read error paths).
GROUP_OF_FIELD: dict[str, str] = {
    "databaseId": "identity", "nameWithOwner": "identity", "url": "identity",
    "defaultBranchRef": "default_branch", "stargazerCount": "stars", "forkCount": "forks_count",
    "isArchived": "is_archived", "licenseInfo": "license", "diskUsage": "repository_size",
    "pushedAt": "last_update", "languages": "language_stats", "releases": "total_releases",
    "latestRelease": "latest_release", "issues": "open_issues",
    "pullRequests": "open_pull_requests", "hasDiscussionsEnabled": "discussions",
    "discussions": "discussions",
}

#: Metrics each group fills (latest_release also gives release_date).
METRICS_OF_GROUP: dict[str, tuple[str, ...]] = {
    "identity": ("full_name", "repo_id", "url"),
    "latest_release": ("latest_release", "release_date"),
    "discussions": ("discussions", "discussions_enabled"),
}


def alias(index: int) -> str:
    return f"r{index}"


def _literal(text: str) -> str:
    # A JSON string is a valid GraphQL string literal for these characters.
    return json.dumps(text)


def build_query(repos: list[RepoRef], without: frozenset[str] = frozenset()) -> str:
    """The query for ``repos`` (aliases r0, r1... in order), leaving out groups ``without``."""
    groups = [g for g in SELECTIONS if g == "identity" or g not in without]
    fragment = " ".join(SELECTIONS[g] for g in groups)
    lines = ["query ExtensionMetrics {", "  rateLimit { cost remaining resetAt }"]
    for index, ref in enumerate(repos):
        lines.append(
            f"  {alias(index)}: repository(owner: {_literal(ref.owner)}, name: {_literal(ref.name)})"
            " { ...ExtensionRepository }"
        )
    lines.append("}")
    lines.append(f"fragment ExtensionRepository on Repository {{ {fragment} }}")
    return "\n".join(lines)


def request_body(repos: list[RepoRef], without: frozenset[str] = frozenset()) -> bytes:
    return json.dumps({"query": build_query(repos, without)}).encode("utf-8")


@dataclass
class GraphQLError:
    """One entry of the ``errors`` list, relative to its alias."""

    type: str | None
    message: str
    #: Path below the alias: () for the repository itself, ("discussions",) for a field.
    path: tuple[Any, ...] = ()

    @property
    def group(self) -> str | None:
        return GROUP_OF_FIELD.get(self.path[0]) if self.path else None

    def __str__(self) -> str:
        kind = f"{self.type}: " if self.type else ""
        return f"{kind}{self.message}"


@dataclass
class RepoAnswer:
    node: dict[str, Any] | None
    errors: list[GraphQLError] = field(default_factory=list)

    @property
    def failed_groups(self) -> frozenset[str]:
        return frozenset(e.group for e in self.errors if e.group)


@dataclass
class BatchAnswer:
    repos: dict[str, RepoAnswer]
    #: Errors not tied to one alias.
    other_errors: list[GraphQLError]
    rate_limit: dict[str, Any] | None


def split_answer(payload: Any, count: int) -> BatchAnswer:
    """Split a GraphQL answer for ``count`` aliases; raise FetchError if it has no data."""
    if not isinstance(payload, dict):
        raise FetchError("wrong shape", f"the GraphQL answer is a {type(payload).__name__}, not an object")
    raw_errors = payload.get("errors") or []
    if not isinstance(raw_errors, list):
        raw_errors = [raw_errors]
    data = payload.get("data")
    if not isinstance(data, dict):
        errors = [_error(e) for e in raw_errors]
        messages = "; ".join(str(e) for e in errors[:3]) or "no data and no errors"
        if any((e.type or "").startswith("RATE_LIMIT") for e in errors):
            raise FetchError("rate limited", messages)
        raise FetchError("graphql error", messages)
    aliases = {alias(i) for i in range(count)}
    repos = {a: RepoAnswer(data.get(a) if isinstance(data.get(a), dict) else None) for a in sorted(aliases)}
    other: list[GraphQLError] = []
    for raw in raw_errors:
        error = _error(raw)
        path = raw.get("path") if isinstance(raw, dict) else None
        if isinstance(path, list) and path and path[0] in aliases:
            error.path = tuple(path[1:])
            repos[path[0]].errors.append(error)
        else:
            other.append(error)
    rate_limit = data.get("rateLimit") if isinstance(data.get("rateLimit"), dict) else None
    return BatchAnswer(repos, other, rate_limit)


def _error(raw: Any) -> GraphQLError:
    if not isinstance(raw, dict):
        return GraphQLError(None, str(raw)[:300])
    kind = raw.get("type")
    if kind is None and isinstance(raw.get("extensions"), dict):
        kind = raw["extensions"].get("code")
    return GraphQLError(str(kind) if kind else None, str(raw.get("message") or "no message")[:300])
