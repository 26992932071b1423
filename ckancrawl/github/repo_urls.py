"""Which GitHub repository a catalog dataset or a line of text names.

Catalog listings write repositories in many ways: ``https://github.com/o/r``,
``http://www.github.com/O/R.git``, ``github.com/o/r/tree/master/ckanext``,
``git@github.com:o/r.git``, a link in Markdown notes, ``https://github.com/o/r/issues``,
``https://raw.githubusercontent.com/o/r/...``. All of them name ``o/r``.

A dataset is searched in the order of the original pipeline: ``url``, ``notes``,
extras (and ckanext-scheming's top-level fields), resources. The first GitHub
*repository* URL wins; links to a GitHub account (``github.com/ckan``) are skipped.
When there is none, the reason says whether the extension lives on another code host
(GitLab, Bitbucket...) or no repository was listed at all.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ckancrawl.failures import FetchError
from ckancrawl.site_urls import extras_dict

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_GITHUB_HOSTS = {"github.com", "www.github.com", "api.github.com", "codeload.github.com"}
_RAW_HOSTS = {"raw.githubusercontent.com", "raw.github.com"}
#: First path segments of github.com that are not accounts.
_RESERVED = {
    "about", "apps", "collections", "contact", "customer-stories", "enterprise", "events",
    "explore", "features", "issues", "join", "login", "marketplace", "new", "notifications",
    "orgs", "organizations", "pricing", "pulls", "readme", "search", "security", "settings",
    "site", "sponsors", "topics", "trending", "codespaces", "dashboard", "users",
}
#: Code hosts other than GitHub, matched on the host name.
_OTHER_CODE_HOSTS = (
    "gitlab", "bitbucket.org", "codeberg.org", "sourceforge.net", "gitee.com", "sr.ht",
    "launchpad.net", "salsa.debian.org", "framagit.org", "gitea", "forgejo",
)
#: URLs and scp-like git addresses inside free text.
_ADDRESS_IN_TEXT = re.compile(
    r"(?:(?:https?|git|ssh|git\+https|git\+ssh)://[^\s<>\"'()\[\]{}|\\^`]+"
    r"|git@[A-Za-z0-9.-]+:[^\s<>\"'()\[\]{}|\\^`]+"
    r"|(?<![\w./@-])(?:www\.)?github\.com/[^\s<>\"'()\[\]{}|\\^`]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RepoRef:
    """A repository as listed: owner and name with the listing's case."""

    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> str:
        """GitHub names are case-insensitive: the key to compare listings by."""
        return self.full_name.lower()


def parse_repository(text: Any, allow_bare: bool = False) -> RepoRef | None:
    """The repository a URL or git address names; None otherwise.

    ``allow_bare`` also accepts a plain ``owner/name`` (for lists of repositories, not
    for catalog fields, where ``a/b`` is rarely a repository).
    """
    if not isinstance(text, str):
        return None
    value = text.strip().rstrip(".,;:!?*_>)")
    if not value:
        return None
    scp = re.match(r"^git@(?:www\.)?github\.com:(.+)$", value, re.IGNORECASE)
    if scp:
        return _from_path(scp.group(1))
    if "://" not in value:
        if re.match(r"^(?:www\.)?github\.com/", value, re.IGNORECASE):
            value = "https://" + value
        elif allow_bare and re.match(r"^[^/\s:]+/[^/\s:]+$", value):
            return _from_path(value)
        else:
            return None
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if host in _RAW_HOSTS:
        return _from_segments(segments)
    if host not in _GITHUB_HOSTS:
        return None
    if host == "api.github.com":
        if len(segments) >= 3 and segments[0] == "repos":
            return _from_segments(segments[1:])
        return None
    return _from_segments(segments)


def _from_path(path: str) -> RepoRef | None:
    return _from_segments([s for s in path.split("/") if s])


def _from_segments(segments: list[str]) -> RepoRef | None:
    if len(segments) < 2:
        return None
    owner, name = segments[0], segments[1]
    if owner.lower() in _RESERVED:
        return None
    if name.lower().endswith(".git"):
        name = name[:-4]
    if not _OWNER.match(owner) or not _NAME.match(name) or name in (".", ".."):
        return None
    return RepoRef(owner, name)


def other_code_host(text: Any) -> str | None:
    """The host of a URL on a code host other than GitHub (gitlab.com...), else None."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    scp = re.match(r"^git@([A-Za-z0-9.-]+):", value)
    if scp:
        host = scp.group(1).lower()
    else:
        try:
            host = (urlsplit(value).hostname or "").lower()
        except ValueError:
            return None
    if host and any(marker in host for marker in _OTHER_CODE_HOSTS):
        return host
    return None


def addresses_in_text(text: Any) -> Iterator[str]:
    if isinstance(text, str):
        for match in _ADDRESS_IN_TEXT.finditer(text):
            yield match.group(0)


def _dataset_candidates(dataset: dict[str, Any]) -> Iterator[str]:
    """Every address in the dataset, in the order the original pipeline looked."""
    url = dataset.get("url")
    if isinstance(url, str) and url.strip():
        yield url.strip()
    yield from addresses_in_text(dataset.get("notes"))
    for value in extras_dict(dataset).values():
        yield from _addresses_in_value(value)
    # ckanext-scheming flattens extras into top-level fields.
    for key, value in dataset.items():
        if key not in ("url", "notes", "resources", "extras") and isinstance(value, str):
            yield from _addresses_in_value(value)
    resources = dataset.get("resources")
    if isinstance(resources, list):
        for resource in resources:
            if isinstance(resource, dict):
                yield from _addresses_in_value(resource.get("url"))


def _addresses_in_value(value: Any) -> Iterator[str]:
    yield from addresses_in_text(value)


def repository_from_dataset(dataset: dict[str, Any]) -> tuple[str | None, RepoRef | FetchError]:
    """(the address as listed, its repository) or (an address or None, why there is none)."""
    other: str | None = None
    account: str | None = None
    for candidate in _dataset_candidates(dataset):
        ref = parse_repository(candidate)
        if ref is not None:
            return candidate, ref
        if other is None and other_code_host(candidate):
            other = candidate
        if account is None and _is_github_address(candidate):
            account = candidate
    if other is not None:
        host = other_code_host(other)
        return other, FetchError(
            "not github", f"the repository is on {host} ({other}); only GitHub repositories are measured"
        )
    if account is not None:
        return account, FetchError(
            "no url", f"{account} is a GitHub account or page, not a repository, and no repository URL is listed"
        )
    return None, FetchError(
        "no url", "no GitHub repository URL in url, notes, extras or resources of the catalog dataset"
    )


def _is_github_address(text: str) -> bool:
    return bool(re.match(r"^(?:[a-z+]+://)?(?:www\.)?github\.com(?:[/:]|$)", text.strip(), re.IGNORECASE))
