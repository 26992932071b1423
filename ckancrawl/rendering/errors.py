"""Failures of rendering, as exceptions that :func:`ckancrawl.failures.describe_exception`
turns into reasons: a backend raises Scrapy's own download exceptions where one fits
(DNS, connection refused, timeout, connection lost) and these for the rest."""
from __future__ import annotations


class RenderingError(Exception):
    """The backend could not render the page (recorded as ``error: RenderingError: ...``)."""


class BrowserSSLError(RenderingError):
    """The browser's TLS handshake failed (its name makes it a ``tls`` failure)."""


class RenderingConfigError(ValueError):
    """A rendering setting that cannot work; the message says how to fix it."""
