"""GitHub's answers turned into the catalog's metric fields.

- ``from_graphql``: a Repository node of ``graphql_query`` -> metrics.
- ``from_rest_repository``: ``GET /repos/{owner}/{repo}`` JSON -> the metrics it has
  (for the token-less REST-only mode). Its ``open_issues_count`` counts pull requests
  too, so ``open_issues`` is left for the caller to derive.
- ``count_from_link``: a list's size from a ``per_page=1`` page: the ``page`` number of
  the ``rel="last"`` link, or the length of the only page.
- ``language_shares``: bytes per language -> percent per language.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ckancrawl.failures import FetchError

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def language_shares(sizes: dict[str, int], total: int | None = None) -> dict[str, float]:
    """Percent of code per language (one decimal), largest first."""
    total = total if total else sum(sizes.values())
    if not total:
        return {}
    ordered = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    return {name: round(size * 100.0 / total, 1) for name, size in ordered}


def _count(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise FetchError("wrong shape", f"{what} is {value!r}, not a count")


def from_graphql(node: dict[str, Any], skipped: frozenset[str] = frozenset()) -> tuple[dict[str, Any], dict[str, str]]:
    """(metrics, errors) from one Repository node; groups in ``skipped`` were not asked."""
    metrics: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def read(group: str, reader: Any) -> None:
        if group in skipped:
            return
        try:
            reader()
        except FetchError as error:
            errors[group] = str(error)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            errors[group] = str(FetchError("wrong shape", f"{group}: {type(exc).__name__} {exc}"))

    def identity() -> None:
        metrics["full_name"] = node["nameWithOwner"]
        metrics["repo_id"] = node.get("databaseId")
        metrics["url"] = node.get("url")

    def default_branch() -> None:
        ref = node.get("defaultBranchRef")
        metrics["default_branch"] = ref.get("name") if isinstance(ref, dict) else None

    def languages() -> None:
        connection = node.get("languages")
        if connection is None:
            raise FetchError("wrong shape", "languages is null")
        sizes = {edge["node"]["name"]: _count(edge["size"], "language size") for edge in connection["edges"]}
        metrics["language_stats"] = language_shares(sizes, connection.get("totalSize"))

    def latest() -> None:
        release = node.get("latestRelease")
        metrics["latest_release"] = release.get("tagName") if isinstance(release, dict) else None
        metrics["release_date"] = release.get("publishedAt") if isinstance(release, dict) else None

    def license_() -> None:
        info = node.get("licenseInfo")
        metrics["license"] = info.get("spdxId") if isinstance(info, dict) else None

    def discussions() -> None:
        metrics["discussions"] = _count(node["discussions"]["totalCount"], "discussions totalCount")
        metrics["discussions_enabled"] = bool(node["hasDiscussionsEnabled"])

    read("identity", identity)
    read("default_branch", default_branch)
    read("stars", lambda: metrics.__setitem__("stars", _count(node["stargazerCount"], "stargazerCount")))
    read("forks_count", lambda: metrics.__setitem__("forks_count", _count(node["forkCount"], "forkCount")))
    read("is_archived", lambda: metrics.__setitem__("is_archived", bool(node["isArchived"])))
    read("license", license_)
    read("repository_size", lambda: metrics.__setitem__("repository_size", node.get("diskUsage")))
    read("last_update", lambda: metrics.__setitem__("last_update", node.get("pushedAt")))
    read("language_stats", languages)
    read(
        "total_releases",
        lambda: metrics.__setitem__("total_releases", _count(node["releases"]["totalCount"], "releases")),
    )
    read("latest_release", latest)
    read("open_issues", lambda: metrics.__setitem__("open_issues", _count(node["issues"]["totalCount"], "issues")))
    read(
        "open_pull_requests",
        lambda: metrics.__setitem__(
            "open_pull_requests", _count(node["pullRequests"]["totalCount"], "pullRequests")
        ),
    )
    read("discussions", discussions)
    return metrics, errors


def from_rest_repository(repo: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /repos/{owner}/{repo}`` tells; raises FetchError on a wrong shape."""
    try:
        license_info = repo.get("license")
        return {
            "full_name": repo["full_name"],
            "repo_id": repo.get("id"),
            "url": repo.get("html_url"),
            "default_branch": repo.get("default_branch"),
            "stars": _count(repo["stargazers_count"], "stargazers_count"),
            "forks_count": _count(repo["forks_count"], "forks_count"),
            "is_archived": bool(repo.get("archived")),
            "license": license_info.get("spdx_id") if isinstance(license_info, dict) else None,
            "repository_size": repo.get("size"),
            "last_update": repo.get("pushed_at"),
            "discussions_enabled": repo.get("has_discussions"),
            # Issues *and* pull requests: the caller subtracts the open pull requests.
            "open_issues_and_pulls": _count(repo["open_issues_count"], "open_issues_count"),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise FetchError("wrong shape", f"the repository JSON has no usable {exc}") from None


def links(header: Any) -> dict[str, str]:
    """rel -> URL from a Link header."""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if not isinstance(header, str):
        return {}
    return {rel.strip(): url for url, rel in _LINK.findall(header)}


def count_from_link(link_header: Any, page: Any, what: str) -> int:
    """The number of items of a list read with ``per_page=1``.

    With more than one item GitHub sends ``rel="last"``, whose ``page`` is the count;
    with none or one there is no Link and the page itself holds the answer.
    """
    rels = links(link_header)
    if "last" in rels:
        pages = parse_qs(urlsplit(rels["last"]).query).get("page")
        if pages and pages[0].isdigit():
            return int(pages[0])
        raise FetchError("wrong shape", f"the last link of {what} has no page number: {rels['last'][:200]}")
    if "next" in rels:
        raise FetchError("wrong shape", f"{what} has a next page but no last link, so it cannot be counted")
    if not isinstance(page, list):
        raise FetchError("wrong shape", f"{what} answered a {type(page).__name__}, not a list")
    return len(page)
