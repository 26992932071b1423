"""HTML pages of the world: CKAN's pages, other web sites, error pages.

CKAN pages carry what CKAN's ``base.html`` puts in every page (2.2 to 2.11):
``<meta name="generator" content="ckan X.Y.Z" />`` (unless the theme drops it) and
``<body data-site-root=... data-locale-root=...>``, both built from ``ckan.site_url``
and ``ckan.root_path``, so they name the configured public URL, not necessarily the
address the page was fetched from.
"""
from __future__ import annotations

import html
import re
from typing import Any

HTML_TYPE = "text/html; charset=utf-8"

_REASONS = {
    200: "OK", 301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

#: First path segments that CKAN answers with a page (after an optional locale).
_CKAN_PAGES = {"", "dataset", "organization", "group", "about", "user", "showcase", "harvest"}
_LOCALE = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def _site_root(ckan: Any) -> str:
    match = re.match(r"^([a-z]+://[^/]+)", ckan.site_url or "")
    return (match.group(1) if match else "") + ckan.prefix + "/"


def ckan_page(ckan: Any, title: str, main: str) -> bytes:
    generator = f'<meta name="generator" content="ckan {html.escape(ckan.version)}" />\n' if ckan.generator_meta else ""
    root = html.escape(_site_root(ckan))
    site_title = html.escape(ckan.site_title)
    prefix = html.escape(ckan.prefix)
    return f"""<!DOCTYPE html>
<!--[if IE 9]> <html lang="{ckan.locale_default}" class="ie9"> <![endif]-->
<!--[if gt IE 8]><!--> <html lang="{ckan.locale_default}"> <!--<![endif]-->
<head>
<meta charset="utf-8" />
{generator}<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)} - {site_title}</title>
<link rel="shortcut icon" href="{prefix}/base/images/ckan.ico" />
</head>
<body data-site-root="{root}" data-locale-root="{root}" >
<header class="masthead"><a class="logo" href="{prefix}/">{site_title}</a>
<nav><a href="{prefix}/dataset/">Datasets</a> <a href="{prefix}/organization/">Organizations</a>
<a href="{prefix}/group/">Groups</a> <a href="{prefix}/about">About</a></nav></header>
<div role="main">{main}</div>
<footer class="site-footer"><a href="{prefix}/api/3">API</a> Powered by CKAN</footer>
</body>
</html>
""".encode()


def ckan_page_for(ckan: Any, path: str) -> tuple[int, bytes]:
    """The page CKAN answers for ``path`` (the prefix already removed)."""
    segments = [s for s in path.split("/") if s]
    if segments and _LOCALE.match(segments[0]):
        segments = segments[1:]
    first = segments[0] if segments else ""
    if first not in _CKAN_PAGES:
        return 404, ckan_page(ckan, "Not found", "<h1>404 Not Found</h1><p>Page not found</p>")
    if first == "":
        return 200, ckan_page(ckan, "Welcome", f"<h1>{html.escape(ckan.site_title)}</h1>"
                                               f"<p>{html.escape(ckan.site_description)}</p>")
    label = {"dataset": "Datasets", "organization": "Organizations", "group": "Groups"}.get(first, first.title())
    return 200, ckan_page(ckan, label, f"<h1>{label}</h1><p>{ckan.num_datasets} datasets found</p>")


def plain_site_page(title: str, path: str) -> bytes:
    """A web site that is not CKAN (a CMS page), whatever the path."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="WordPress 6.4.2">
<title>{html.escape(title)}</title></head>
<body class="page"><h1>{html.escape(title)}</h1>
<p>Welcome to our web site. You asked for {html.escape(path)}.</p>
<a href="/">Home</a> <a href="/contact">Contact</a></body></html>
""".encode()


def server_error_page(status: int) -> bytes:
    """The error page of the web server in front (nginx's wording)."""
    text = f"{status} {reason_phrase(status)}"
    return (f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n"
            f"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").encode()


def pylons_error_page() -> bytes:
    """CKAN before 2.9 on an unhandled exception in an API call."""
    return (b"<html><head><title>Server Error</title></head><body><h1>Server Error</h1>"
            b"<p>An internal server error occurred</p></body></html>")
