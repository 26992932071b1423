"""Does a fetched page need a browser to show its content?

:func:`needs_rendering` answers with the reason, or None. The rules, in order:

1. Only a successful (2xx) HTML answer that was not rendered already is considered:
   JSON, files, error pages and redirects are what they are.
2. ``"empty body"``: the body is empty or only whitespace.
3. The page's visible text is what is left of ``<body>`` without ``<script>``,
   ``<style>``, ``<noscript>`` and ``<template>``. When it is shorter than
   :data:`SHELL_TEXT_CHARS` and the page has a ``<script>``, the page is an application
   shell that builds itself in the browser:

   - ``"noscript shell"`` when it also has a ``<noscript>`` (the usual "You need to
     enable JavaScript to run this app."),
   - ``"script shell"`` otherwise (``<div id="app"></div><script src=...>``).

A page with little text and no script stays as it is: a browser would show the same.
"""
from __future__ import annotations

from scrapy.http import Response, TextResponse
from parsel import Selector

#: Visible characters below which a page with scripts counts as an empty shell. A CKAN
#: home page has thousands; a shell has a "Loading..." at most.
SHELL_TEXT_CHARS = 100

_VISIBLE_TEXT = (
    "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)"
    " and not(ancestor::template)]"
)


def needs_rendering(response: Response) -> str | None:
    if not 200 <= response.status < 300 or "rendered" in response.flags:
        return None
    content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
    if not response.body.strip():
        return "empty body" if not content_type or "html" in content_type else None
    if "html" not in content_type and not _looks_like_html(response):
        return None
    selector = Selector(text=response.text) if isinstance(response, TextResponse) else None
    if selector is None:
        return None
    if not selector.xpath("//script"):
        return None
    visible = "".join(selector.xpath(_VISIBLE_TEXT).getall())
    if len("".join(visible.split())) >= SHELL_TEXT_CHARS:
        return None
    return "noscript shell" if selector.xpath("//noscript") else "script shell"


def _looks_like_html(response: Response) -> bool:
    start = response.body.lstrip()[:200].lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html")
