"""GitHub's rate limits, tokens and transient answers, for requests marked as GitHub's.

A request is GitHub's when its ``meta["github_resource"]`` is set (``"core"`` for REST,
``"graphql"``); every other request passes untouched. Two middlewares share one
:class:`~ckancrawl.github.tokens.TokenPool` (tokens from ``GITHUB_TOKENS`` /
``GITHUB_TOKEN`` in the environment):

``GitHubRateLimitMiddleware`` (560, between retries and redirects):

- before a request: picks the token (the one with most budget left, or the one the
  request is pinned to by ``meta["github_token_hint"]`` so its stored ETags stay valid);
  when every token's budget for that resource is spent, waits until the earliest
  ``X-RateLimit-Reset`` and logs when the crawl will resume; keeps to
  ``GITHUB_POINTS_PER_MINUTE`` per resource (GitHub's secondary limit is 900 for REST,
  2000 for GraphQL); holds every GitHub request while a secondary limit is in force.
- after an answer: reads ``X-RateLimit-*``; a 403/429 with ``X-RateLimit-Remaining: 0``,
  or a GraphQL ``RATE_LIMITED``/``RATE_LIMIT`` error, marks that token spent until its
  reset and retries; a secondary limit (403/429 whose message says so, or with
  ``Retry-After``, or any other 429) pauses all GitHub requests for ``Retry-After``
  seconds, else for ``GITHUB_SECONDARY_BACKOFF`` doubled at each attempt; a 202 ("still
  computing") is asked again after ``GITHUB_ACCEPTED_DELAY`` (doubled each time); a 401
  takes that token out of the rotation and retries with another. 5xx are left to
  BackoffRetryMiddleware. When the retries are used up the answer goes to the spider,
  which records it.

``GitHubGateMiddleware`` (950, next to the download handler) lets at most
``GITHUB_CONCURRENT_REQUESTS`` GitHub requests be in flight, adds the ``Authorization``
header just before the download and removes it from the request as soon as the answer
(or the exception) comes back, so the token is never in a request that is retried,
redirected, scheduled, serialised to a JOBDIR or logged.

Settings (defaults in brackets):

- ``GITHUB_RATE_LIMIT_MAX_WAIT`` [3900]: longest wait (s) for a budget reset; a later
  reset fails the request with "rate limited" instead.
- ``GITHUB_RATE_LIMIT_RETRIES`` [3]: waits for a reset per request.
- ``GITHUB_SECONDARY_BACKOFF`` [60]: first pause (s) after a secondary limit without
  Retry-After; doubled at each further attempt.
- ``GITHUB_SECONDARY_RETRIES`` [5]: attempts per request under secondary limits.
- ``GITHUB_ACCEPTED_DELAY`` [2]: first wait (s) before asking again after a 202.
- ``GITHUB_ACCEPTED_RETRIES`` [5]: attempts per request after 202s.
- ``GITHUB_POINTS_PER_MINUTE`` [800]: requests per rolling minute per resource; 0
  switches pacing off.
- ``GITHUB_CONCURRENT_REQUESTS`` [4]: GitHub requests in flight at once (gate).

Stats: ``github/requests/<resource>``, ``github/status/<code>``, ``github/not_modified``,
``github/rate_limit/waits``, ``github/rate_limit/waited_seconds``,
``github/secondary_limit/pauses``, ``github/accepted/retries``, ``github/tokens/refused``,
``github/budget/<resource>/remaining`` (lowest seen).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from ckancrawl.github.tokens import NoUsableToken, TokenPool
from ckancrawl.middlewares.retry import retry_after_seconds

logger = logging.getLogger(__name__)

META_RESOURCE = "github_resource"
META_TOKEN = "github_token"
META_HINT = "github_token_hint"


class GitHubGaveUp(IgnoreRequest):
    """A GitHub request that is not sent; its text is a reason: "<kind>: <detail>"."""


class GitHubRateLimited(GitHubGaveUp):
    """The budget will not come back within GITHUB_RATE_LIMIT_MAX_WAIT."""


class GitHubRefused(GitHubGaveUp):
    """GitHub refused every token."""


def _clock_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class GitHubRateLimitMiddleware:
    #: The rolling window of GITHUB_POINTS_PER_MINUTE (seconds).
    pacing_window = 60.0

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.pool = TokenPool.for_crawler(crawler)
        self.max_wait = settings.getfloat("GITHUB_RATE_LIMIT_MAX_WAIT", 3900.0)
        self.rate_limit_retries = settings.getint("GITHUB_RATE_LIMIT_RETRIES", 3)
        self.secondary_backoff = settings.getfloat("GITHUB_SECONDARY_BACKOFF", 60.0)
        self.secondary_retries = settings.getint("GITHUB_SECONDARY_RETRIES", 5)
        self.accepted_delay = settings.getfloat("GITHUB_ACCEPTED_DELAY", 2.0)
        self.accepted_retries = settings.getint("GITHUB_ACCEPTED_RETRIES", 5)
        self.points_per_minute = settings.getint("GITHUB_POINTS_PER_MINUTE", 800)
        self._paused_until = 0.0
        self._sent: dict[str, deque[float]] = {}
        self._announced: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> "GitHubRateLimitMiddleware":
        return cls(crawler)

    # -- before the download -----------------------------------------------------------

    async def process_request(self, request: Request) -> None:
        resource = request.meta.get(META_RESOURCE)
        if resource is None:
            return None
        while True:
            await self._wait_for_pause()
            try:
                index, wait = self.pool.choose(resource, request.meta.get(META_HINT))
            except NoUsableToken as exc:
                raise GitHubRefused(f"http error: {exc}") from None
            if wait <= 0:
                break
            resume = time.time() + wait
            if wait > self.max_wait:
                raise GitHubRateLimited(
                    f"rate limited: the GitHub {resource} budget is used up until {_clock_text(resume)}, "
                    f"later than GITHUB_RATE_LIMIT_MAX_WAIT ({self.max_wait:g} s)"
                )
            if self._announced.get(resource, 0) < resume - 1:
                self._announced[resource] = resume
                who = f"all {self.pool.size} tokens" if self.pool.size > 1 else (
                    "the token" if self.pool.size else "anonymous access (60 requests an hour)"
                )
                logger.warning(
                    "GitHub %s budget used up on %s; waiting until %s (%.0f s) to resume",
                    resource, who, _clock_text(resume), wait,
                )
                self.stats.inc_value("github/rate_limit/waits")
                self.stats.inc_value("github/rate_limit/waited_seconds", round(wait))
            await asyncio.sleep(wait + 0.5)
        await self._pace(resource)
        budget = self.pool.budget(index, resource)
        if budget.remaining is not None and budget.remaining > 0:
            budget.remaining -= 1  # until the answer's headers say exactly
        request.meta[META_TOKEN] = index
        self.stats.inc_value(f"github/requests/{resource}")
        return None

    async def _wait_for_pause(self) -> None:
        while (delay := self._paused_until - time.time()) > 0:
            await asyncio.sleep(delay)

    async def _pace(self, resource: str) -> None:
        if self.points_per_minute <= 0:
            return
        sent = self._sent.setdefault(resource, deque())
        while True:
            now = time.monotonic()
            while sent and sent[0] <= now - self.pacing_window:
                sent.popleft()
            if len(sent) < self.points_per_minute:
                sent.append(now)
                return
            await asyncio.sleep(sent[0] + self.pacing_window - now)

    # -- after the download --------------------------------------------------------------

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get(META_RESOURCE) is None:
            return response
        index = request.meta.get(META_TOKEN)
        resource = self.pool.update(index, response.headers) or request.meta[META_RESOURCE]
        self.stats.inc_value(f"github/status/{response.status}")
        self._record_budget(resource, index)
        if response.status == 304:
            self.stats.inc_value("github/not_modified")
            return response
        if response.status == 401 and index is not None:
            return self._refused(request, response, index)
        if self._is_primary_limit(response, resource):
            return self._after_primary_limit(request, response, index, resource)
        if response.status in (403, 429) and self._is_secondary_limit(response):
            return self._after_secondary_limit(request, response)
        if response.status == 202:
            return await self._after_accepted(request, response)
        return response

    def _record_budget(self, resource: str, index: int | None) -> None:
        remaining = self.pool.budget(index, resource).remaining
        if remaining is not None:
            self.stats.min_value(f"github/budget/{resource}/remaining", remaining)

    @staticmethod
    def _is_primary_limit(response: Response, resource: str) -> bool:
        remaining = response.headers.get(b"X-RateLimit-Remaining")
        if response.status in (403, 429) and remaining is not None and remaining.strip() == b"0":
            return True
        if resource == "graphql" and response.status in (200, 403) and b"RATE_LIMIT" in response.body[:4096]:
            try:
                errors = json.loads(response.body).get("errors") or []
            except (ValueError, AttributeError):
                return False
            return any(isinstance(e, dict) and str(e.get("type", "")).startswith("RATE_LIMIT") for e in errors)
        return False

    @staticmethod
    def _is_secondary_limit(response: Response) -> bool:
        if response.status == 429 or response.headers.get(b"Retry-After") is not None:
            return True
        return b"secondary rate limit" in response.body[:2048].lower()

    def _retry(self, request: Request, counter: str) -> Request:
        retry = request.copy()
        retry.meta[counter] = request.meta.get(counter, 0) + 1
        retry.dont_filter = True
        return retry

    def _refused(self, request: Request, response: Response, index: int) -> Request | Response:
        self.pool.refuse(index)
        self.stats.inc_value("github/tokens/refused")
        left = len(self.pool.usable)
        logger.error(
            "GitHub refused %s (HTTP 401 Bad credentials); %d other token(s) left. "
            "Check GITHUB_TOKEN/GITHUB_TOKENS.", self.pool.label(index), left,
        )
        return self._retry(request, "github_auth_retries") if left else response

    def _after_primary_limit(
        self, request: Request, response: Response, index: int | None, resource: str
    ) -> Request | Response:
        reset = response.headers.get(b"X-RateLimit-Reset")
        try:
            reset_at = float(reset) if reset is not None else None
        except ValueError:
            reset_at = None
        self.pool.spend_all(index, resource, reset_at)
        if request.meta.get("github_rate_limit_retries", 0) >= self.rate_limit_retries:
            return response
        return self._retry(request, "github_rate_limit_retries")

    def _after_secondary_limit(self, request: Request, response: Response) -> Request | Response:
        attempt = request.meta.get("github_secondary_retries", 0)
        if attempt >= self.secondary_retries:
            return response
        asked = retry_after_seconds(response.headers.get(b"Retry-After"))
        pause = asked if asked is not None else self.secondary_backoff * (2**attempt)
        self._paused_until = max(self._paused_until, time.time() + pause)
        self.stats.inc_value("github/secondary_limit/pauses")
        logger.warning(
            "GitHub secondary rate limit (HTTP %d%s): pausing every GitHub request for %.0f s "
            "(attempt %d of %d)",
            response.status, ", Retry-After" if asked is not None else "", pause, attempt + 1,
            self.secondary_retries,
        )
        return self._retry(request, "github_secondary_retries")

    async def _after_accepted(self, request: Request, response: Response) -> Request | Response:
        attempt = request.meta.get("github_accepted_retries", 0)
        if attempt >= self.accepted_retries:
            return response
        self.stats.inc_value("github/accepted/retries")
        await asyncio.sleep(self.accepted_delay * (2**attempt))
        return self._retry(request, "github_accepted_retries")


class GitHubGateMiddleware:
    """The last step before the download: at most GITHUB_CONCURRENT_REQUESTS GitHub
    requests in flight, and the token header for exactly as long as the download."""

    def __init__(self, crawler: Any) -> None:
        self.pool = TokenPool.for_crawler(crawler)
        self.gate = asyncio.Semaphore(max(1, crawler.settings.getint("GITHUB_CONCURRENT_REQUESTS", 4)))

    @classmethod
    def from_crawler(cls, crawler: Any) -> "GitHubGateMiddleware":
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        if request.meta.get(META_RESOURCE) is None:
            return None
        # Scrapy's slot concurrency does not hold for a burst of download_async calls
        # made in one loop iteration (every one is dequeued before any counts as
        # transferring), so GitHub's requests are counted here.
        await self.gate.acquire()
        index = request.meta.get(META_TOKEN)
        if index is not None and index not in self.pool.usable:
            # Refused while this request waited at the gate.
            if not self.pool.usable:
                self.gate.release()
                raise GitHubRefused(f"http error: GitHub refused all {self.pool.size} token(s) (401 Bad credentials)")
            index = request.meta[META_TOKEN] = self.pool.usable[0]
        request.meta["github_gate"] = True
        token = self.pool.token(index)
        if token is not None:
            request.headers[b"Authorization"] = f"Bearer {token}".encode("latin-1")
        return None

    def _leave(self, request: Request) -> None:
        request.headers.pop(b"Authorization", None)
        if request.meta.pop("github_gate", False):
            self.gate.release()

    def process_response(self, request: Request, response: Response) -> Response:
        self._leave(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._leave(request)
        return None
