"""Tokens from the environment and their budgets (ckancrawl.github.tokens)."""
from __future__ import annotations

import pytest

from ckancrawl.github.tokens import NoUsableToken, TokenPool, tokens_from_environment


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(remaining: int, reset: int, resource: str = "core") -> dict[str, str]:
    return {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": resource}


def test_tokens_come_from_both_variables_without_duplicates() -> None:
    env = {"GITHUB_TOKENS": "a, b\nc", "GITHUB_TOKEN": "b"}
    assert tokens_from_environment(env) == ["a", "b", "c"]
    assert tokens_from_environment({}) == []


def test_the_pool_never_shows_its_tokens() -> None:
    pool = TokenPool(["ghp_secret"])
    assert "ghp_secret" not in repr(pool)
    assert pool.label(0) == "token #1"


def test_the_token_with_most_budget_left_goes_first() -> None:
    pool = TokenPool(["a", "b"], clock=Clock())
    pool.update(0, headers(10, 2000))
    pool.update(1, headers(900, 2000))
    assert pool.choose("core") == (1, 0.0)


def test_a_hint_pins_a_request_to_one_token_while_it_has_budget() -> None:
    clock = Clock()
    pool = TokenPool(["a", "b"], clock=clock)
    pool.update(0, headers(900, 2000))
    pool.update(1, headers(10, 2000))
    assert pool.choose("core", hint=3) == (1, 0.0)  # 3 % 2
    pool.update(1, headers(0, 2000))
    assert pool.choose("core", hint=3) == (0, 0.0)


def test_when_every_budget_is_spent_the_wait_is_until_the_first_reset() -> None:
    clock = Clock()
    pool = TokenPool(["a", "b"], clock=clock)
    pool.update(0, headers(0, 1300))
    pool.update(1, headers(0, 1100))
    assert pool.choose("core") == (None, 100.0)
    clock.now = 1100.5
    assert pool.choose("core") == (1, 0.0)


def test_budgets_are_per_resource() -> None:
    pool = TokenPool(["a"], clock=Clock())
    pool.update(0, headers(0, 2000, "core"))
    assert pool.choose("graphql") == (0, 0.0)


def test_without_tokens_the_anonymous_budget_is_tracked() -> None:
    pool = TokenPool([], clock=Clock())
    assert not pool.authenticated
    pool.update(None, headers(0, 1060))
    assert pool.choose("core") == (None, 60.0)


def test_refused_tokens_leave_the_rotation() -> None:
    pool = TokenPool(["a", "b"], clock=Clock())
    pool.refuse(0)
    assert pool.choose("core") == (1, 0.0)
    pool.refuse(1)
    with pytest.raises(NoUsableToken):
        pool.choose("core")
