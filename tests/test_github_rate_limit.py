"""The GitHub middlewares on their own (ckancrawl.middlewares.github_rate_limit).

Crawls against the stand-in (tests/test_extensions_crawl.py) show the same behaviours
end to end; these pin the decisions one by one.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from ckancrawl.github.tokens import TokenPool
from ckancrawl.middlewares.github_rate_limit import (
    GitHubGateMiddleware,
    GitHubRateLimited,
    GitHubRateLimitMiddleware,
)

TOKEN = "ghp_unit_test_token"


@pytest.fixture
def crawler(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.delenv("GITHUB_TOKENS", raising=False)
    return get_crawler(settings_dict={"GITHUB_CONCURRENT_REQUESTS": 2, "GITHUB_SECONDARY_BACKOFF": 0.1})


def github(resource: str = "core", url: str = "https://api.github.com/repos/a/b") -> Request:
    return Request(url, meta={"github_resource": resource})


def answer(request: Request, status: int, body: object = None, **headers: str) -> Response:
    raw = json.dumps(body).encode() if body is not None else b""
    return Response(request.url, status=status, body=raw, headers=headers, request=request)


def run(coroutine):
    return asyncio.run(coroutine)


def test_other_requests_pass_untouched(crawler) -> None:
    limits, gate = GitHubRateLimitMiddleware(crawler), GitHubGateMiddleware(crawler)
    request = Request("https://catalog.example.org/api/3/action/package_search")
    assert run(limits.process_request(request)) is None and run(gate.process_request(request)) is None
    assert b"Authorization" not in request.headers


def test_the_token_is_on_the_request_only_during_the_download(crawler) -> None:
    limits, gate = GitHubRateLimitMiddleware(crawler), GitHubGateMiddleware(crawler)
    request = github()
    run(limits.process_request(request))
    run(gate.process_request(request))
    assert request.headers[b"Authorization"] == f"Bearer {TOKEN}".encode()
    assert request.meta["github_token"] == 0  # an index, never the token
    gate.process_response(request, answer(request, 200, []))
    assert b"Authorization" not in request.headers


def test_the_gate_lets_a_fixed_number_through(crawler) -> None:
    gate = GitHubGateMiddleware(crawler)

    async def scenario() -> list[bool]:
        first, second, third = github(), github(), github()
        await gate.process_request(first)
        await gate.process_request(second)
        waiting = asyncio.ensure_future(gate.process_request(third))
        await asyncio.sleep(0.05)
        blocked = not waiting.done()
        gate.process_exception(first, ConnectionError())
        await asyncio.wait_for(waiting, 1)
        return [blocked, waiting.done()]

    assert run(scenario()) == [True, True]


def test_a_spent_budget_is_waited_for_until_the_reset(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    limits.pool.spend_all(0, "core", time.time() + 0.3)
    started = time.monotonic()
    run(limits.process_request(github()))
    assert time.monotonic() - started >= 0.3


def test_a_reset_beyond_the_longest_wait_fails_the_request(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    limits.pool.spend_all(0, "graphql", time.time() + 7200)
    with pytest.raises(GitHubRateLimited, match="rate limited: the GitHub graphql budget is used up until"):
        run(limits.process_request(github("graphql")))


def test_pacing_keeps_to_the_points_per_minute(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    limits.points_per_minute, limits.pacing_window = 3, 0.4

    async def four() -> float:
        started = time.monotonic()
        for _ in range(4):
            await limits.process_request(github())
        return time.monotonic() - started

    assert run(four()) >= 0.39


def test_403_with_remaining_zero_spends_the_token_and_retries(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    request = github()
    run(limits.process_request(request))
    reset = int(time.time()) + 30
    result = run(limits.process_response(request, answer(
        request, 403, {"message": "API rate limit exceeded for user ID 1."},
        **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core"})))
    assert isinstance(result, Request) and result.meta["github_rate_limit_retries"] == 1
    assert limits.pool.choose("core") == (None, pytest.approx(reset - time.time(), abs=1))


def test_graphql_rate_limited_in_a_200_is_a_primary_limit(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    request = github("graphql", "https://api.github.com/graphql")
    run(limits.process_request(request))
    body = {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]}
    result = run(limits.process_response(request, answer(request, 200, body)))
    assert isinstance(result, Request)


def test_a_secondary_limit_pauses_every_request_for_retry_after(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    request = github()
    result = run(limits.process_response(request, answer(
        request, 403, {"message": "You have exceeded a secondary rate limit."}, **{"Retry-After": "2"})))
    assert isinstance(result, Request)
    assert limits._paused_until == pytest.approx(time.time() + 2, abs=0.5)


def test_too_large_is_not_a_rate_limit(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    request = github()
    body = {"message": "The history or contributor list is too large to list contributors for this repository via the API."}
    response = answer(request, 403, body, **{"X-RateLimit-Remaining": "4000"})
    assert run(limits.process_response(request, response)) is response


def test_a_202_is_asked_again_a_few_times(crawler) -> None:
    limits = GitHubRateLimitMiddleware(crawler)
    limits.accepted_delay, limits.accepted_retries = 0.01, 2
    request = github()
    for attempt in range(2):
        request = run(limits.process_response(request, answer(request, 202, {})))
        assert isinstance(request, Request)
    last = answer(request, 202, {})
    assert run(limits.process_response(request, last)) is last


def test_a_401_takes_the_token_out(monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKENS", "ghp_a,ghp_b")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    limits = GitHubRateLimitMiddleware(get_crawler())
    request = github()
    run(limits.process_request(request))
    refused = request.meta["github_token"]
    retry = run(limits.process_response(request, answer(request, 401, {"message": "Bad credentials"})))
    assert isinstance(retry, Request)
    assert limits.pool.usable == [1 - refused]


def test_the_pool_is_shared_by_both_middlewares(crawler) -> None:
    assert GitHubRateLimitMiddleware(crawler).pool is GitHubGateMiddleware(crawler).pool is TokenPool.for_crawler(crawler)
