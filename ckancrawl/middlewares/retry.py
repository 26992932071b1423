"""Retries with exponential backoff that honour ``Retry-After``.

Replaces Scrapy's RetryMiddleware (same settings: RETRY_ENABLED, RETRY_TIMES,
RETRY_HTTP_CODES, RETRY_EXCEPTIONS) and adds:

- ``RETRY_BACKOFF_BASE`` (seconds, default 0.5): the n-th retry waits
  ``base * 2**(n-1)``, with +-25 % jitter, capped by ``RETRY_BACKOFF_MAX`` (default 30).
- ``RETRY_TIMEOUT_TIMES`` (default 0): retries of a request that timed out, at most
  RETRY_TIMES. A server that let DOWNLOAD_TIMEOUT pass is recorded as slow ("timeout:
  no complete answer after 15 s") and measured again next week; each retry would add
  another DOWNLOAD_TIMEOUT to the one slow site that ends a crawl.
- ``RETRY_AFTER_MAX`` (seconds, default 120): a ``Retry-After`` on 429 or 503 is
  honoured up to this; a longer one is not waited for: the request gives up at once
  and its failure says how long the server asked to wait.

The wait happens after the download, so it holds no download slot: other requests to
the same site and to other sites go on.
"""
from __future__ import annotations

import asyncio
import random
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

from scrapy import Request
from scrapy.exceptions import DownloadTimeoutError
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.response import response_status_message


TIMEOUTS = (DownloadTimeoutError, TwistedTimeoutError, TimeoutError)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent or bad."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, settings: BaseSettings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 0.5)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 120.0)
        self.timeout_retries = settings.getint("RETRY_TIMEOUT_TIMES", 0)

    def backoff(self, request: Request) -> float:
        attempt = request.meta.get("retry_times", 0)
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay * random.uniform(0.75, 1.25)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        delay = self.backoff(request)
        if response.status in (429, 503):
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                if asked > self.retry_after_max:
                    self.crawler.stats.inc_value("retry/retry_after_too_long")
                    return response  # give up now; the caller records the 429 and its Retry-After
                delay = asked
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await asyncio.sleep(delay)
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:
        if request.meta.get("dont_retry", False) or not isinstance(exception, self.exceptions_to_retry):
            return None
        if isinstance(exception, TIMEOUTS) and request.meta.get("retry_times", 0) >= self.timeout_retries:
            self.crawler.stats.inc_value("retry/timeout_given_up")
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await asyncio.sleep(self.backoff(request))
        return retry
