"""A resource's URL as the crawler requests it: normalised, or why it cannot be.

Portals publish URLs with spaces, non-ASCII characters, upper-case hosts, default ports,
fragments and without a scheme. :func:`normalise_url` makes the one URL that is fetched
and compared (RFC 3986 section 6 normalisation):

- surrounding whitespace and embedded tabs/newlines dropped (as browsers do);
- ``//host/path`` and ``www.host/path`` get ``http:``; a relative URL is resolved
  against ``base`` (the portal) when one is given;
- unsafe characters percent-encoded (UTF-8), the host IDNA-encoded
  (:func:`w3lib.url.safe_url_string`), existing escapes kept;
- scheme and host in lower case, default port and fragment dropped, empty path "/",
  percent-escapes in upper case and escapes of unreserved characters decoded.

The query keeps its order: servers may depend on it.
"""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string

FETCHED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _escape_case(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    if char.isascii() and (char.isalnum() or char in "-_~"):
        return char
    return "%" + match.group(1).upper()


def normalise_url(url: object, base: str | None = None) -> tuple[str | None, str | None]:
    """``(normalised URL, None)`` or ``(None or a best effort, "<kind>: <detail>")``.

    The error kinds are those of :mod:`ckancrawl.failures`: ``no url`` and ``bad url``.
    """
    if not isinstance(url, str) or not url.strip():
        return None, "no url: the resource has no URL"
    text = re.sub(r"[\t\r\n]", "", url.strip())
    if text.startswith("//"):
        text = "http:" + text
    elif not _SCHEME.match(text):
        if re.match(r"^www\.[^/\s]+\.[a-z]{2,}", text, re.IGNORECASE):
            text = "http://" + text
        elif base:
            text = urljoin(base, text)
        else:
            return None, f"bad url: {url[:200]!r} is relative and there is no base to resolve it"
    try:
        safe = safe_url_string(text)
        parts = urlsplit(safe)
        port = parts.port
    except ValueError as error:
        return None, f"bad url: {url[:200]!r} ({error})"
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme in FETCHED_SCHEMES and not host:
        return None, f"bad url: {url[:200]!r} has no host"
    netloc = host
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = _UNRESERVED.sub(_escape_case, parts.path) or ("/" if scheme in FETCHED_SCHEMES else "")
    query = _UNRESERVED.sub(_escape_case, parts.query)
    normalised = urlunsplit((scheme, netloc, path, query, ""))
    if scheme not in FETCHED_SCHEMES:
        return normalised, f"bad url: the {scheme}: scheme is not fetched (only http and https)"
    return normalised, None
