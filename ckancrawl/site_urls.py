"""Where a listed site lives: its URL in a catalog dataset, and where its API may be."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: Extras that may hold the site's address, in the order the original pipeline read them.
URL_EXTRAS = ("website", "homepage", "site_url", "portal_url")

#: First path segments of CKAN's own pages: whatever precedes them is the install root.
CKAN_PAGE_SEGMENTS = {
    "dataset", "organization", "group", "api", "user", "about", "showcase",
    "harvest", "ckan-admin", "revision", "tag", "package", "datastore", "activity",
}
_LOCALE_SEGMENT = re.compile(r"^[a-z]{2}([_-][A-Za-z]{2,4})?$")
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'()\[\]{}|\\^`]+", re.IGNORECASE)
_BARE_HOST = re.compile(r"^(?:www\.)?[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?(/.*)?$", re.IGNORECASE)


def usable_url(value: Any) -> str | None:
    """An http(s) URL with a host, or None. A bare host name gets ``http://``."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if "://" not in text and _BARE_HOST.match(text):
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(ch.isspace() for ch in text):
        return None
    return text


def url_in_text(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    for match in _URL_IN_TEXT.finditer(text):
        url = usable_url(match.group(0).rstrip(".,;:!?*_"))
        if url:
            return url
    return None


def extras_dict(dataset: dict[str, Any]) -> dict[str, Any]:
    """Extras as a dict, whether CKAN sent a list of {key, value} or a dict."""
    extras = dataset.get("extras")
    if isinstance(extras, dict):
        return extras
    found: dict[str, Any] = {}
    if isinstance(extras, list):
        for extra in extras:
            if isinstance(extra, dict) and isinstance(extra.get("key"), str):
                found.setdefault(extra["key"], extra.get("value"))
    return found


def site_url_from_dataset(dataset: dict[str, Any]) -> str | None:
    """The site's URL: url, then resource URLs, then URL extras, then one in notes."""
    candidates: list[Any] = [dataset.get("url")]
    resources = dataset.get("resources")
    if isinstance(resources, list):
        candidates += [r.get("url") for r in resources if isinstance(r, dict)]
    extras = extras_dict(dataset)
    for key in URL_EXTRAS:
        # ckanext-scheming flattens extras into top-level fields.
        candidates += [extras.get(key), dataset.get(key)]
    for candidate in candidates:
        url = usable_url(candidate)
        if url:
            return url
    return url_in_text(dataset.get("notes"))


def normalize_site_url(url: str) -> str:
    """A stable key for a site URL: lower-case scheme and host, no default port,
    no query or fragment, no trailing slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, "", ""))


def install_roots(url: str) -> list[str]:
    """Where a CKAN install may be rooted, given any of its URLs, deepest first.

    ``https://h/data/dataset/x`` -> ``https://h/data/``, ``https://h/``. A locale
    prefix (``/en/dataset``) is stripped too, since the API is not localised.
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    for index, segment in enumerate(segments):
        if segment.lower() in CKAN_PAGE_SEGMENTS:
            segments = segments[:index]
            break
    else:
        if segments and "." in segments[-1]:
            segments = segments[:-1]  # a file such as index.html
    roots = []
    while True:
        path = "/" + "".join(s + "/" for s in segments)
        roots.append(urlunsplit((parts.scheme, parts.netloc, path, "", "")))
        if not segments:
            break
        if _LOCALE_SEGMENT.match(segments[-1]) and len(segments) >= 1:
            segments = segments[:-1]
            continue
        segments = []
    return list(dict.fromkeys(roots))


def portal_root(url: str) -> str:
    """The install root a portal URL names, normalised, without a locale prefix:
    ``https://h/data/en/dataset/x`` -> ``https://h/data``."""
    roots = install_roots(url)
    chosen = roots[0]
    last = urlsplit(chosen).path.rstrip("/").rsplit("/", 1)[-1]
    if len(roots) > 1 and _LOCALE_SEGMENT.match(last):
        chosen = roots[1]
    return normalize_site_url(chosen)
