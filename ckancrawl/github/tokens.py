"""GitHub tokens from the environment, what each has left of its budget, which to use.

Environment (never settings, which are printed in logs):

- ``GITHUB_TOKENS``: several tokens separated by commas, spaces or new lines, used in
  turn so that a crawl can spend the budget of each;
- ``GITHUB_TOKEN``: one token (added to the list if both are set).

A token is referred to as "token #n" in logs and stats; its value never leaves this
module except in the ``Authorization`` header. Budgets are tracked per token and per
resource (``core`` for REST, ``graphql``) from the ``X-RateLimit-*`` headers of every
answer. Without any token, requests go out unauthenticated (60 REST requests an hour,
no GraphQL) under the pseudo-token ``None``.
"""
from __future__ import annotations

import os
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def tokens_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    found: list[str] = []
    for name in ("GITHUB_TOKENS", "GITHUB_TOKEN"):
        for token in re.split(r"[\s,]+", env.get(name, "") or ""):
            if token and token not in found:
                found.append(token)
    return found


@dataclass
class Budget:
    limit: int | None = None
    remaining: int | None = None
    #: When the budget is refilled (epoch seconds).
    reset: float | None = None

    def exhausted(self, now: float) -> bool:
        return self.remaining == 0 and self.reset is not None and self.reset > now


class TokenPool:
    """The tokens of one crawl; shared by the middlewares through ``for_crawler``."""

    _by_crawler: "weakref.WeakKeyDictionary[Any, TokenPool]" = weakref.WeakKeyDictionary()

    def __init__(self, tokens: list[str], clock: Any = time.time) -> None:
        self._tokens = list(tokens)
        self._clock = clock
        self._budgets: dict[tuple[int | None, str], Budget] = {}
        self._refused: set[int] = set()

    @classmethod
    def for_crawler(cls, crawler: Any) -> "TokenPool":
        pool = cls._by_crawler.get(crawler)
        if pool is None:
            pool = cls._by_crawler[crawler] = cls(tokens_from_environment())
        return pool

    def __repr__(self) -> str:  # never show the tokens
        return f"<TokenPool of {len(self._tokens)} token(s)>"

    @property
    def size(self) -> int:
        return len(self._tokens)

    @property
    def usable(self) -> list[int]:
        return [i for i in range(len(self._tokens)) if i not in self._refused]

    @property
    def authenticated(self) -> bool:
        return bool(self._tokens)

    def token(self, index: int | None) -> str | None:
        return None if index is None else self._tokens[index]

    @staticmethod
    def label(index: int | None) -> str:
        return "no token" if index is None else f"token #{index + 1}"

    def budget(self, index: int | None, resource: str) -> Budget:
        return self._budgets.setdefault((index, resource), Budget())

    def choose(self, resource: str, hint: int | None = None) -> tuple[int | None, float]:
        """(token index, 0) to use now, or (None, seconds to wait) when all are spent.

        ``hint`` pins a request to one token (the one that stored an ETag, whose
        conditional requests are free only with that same token) while it has budget.
        Otherwise the token with the most budget left goes first.
        """
        if not self._tokens:
            budget = self.budget(None, resource)
            now = self._clock()
            return None, (budget.reset - now) if budget.exhausted(now) else 0.0
        usable = self.usable
        if not usable:
            raise NoUsableToken(f"GitHub refused all {len(self._tokens)} token(s) (401 Bad credentials)")
        now = self._clock()
        open_ = [i for i in usable if not self.budget(i, resource).exhausted(now)]
        if not open_:
            return None, min(self.budget(i, resource).reset or now for i in usable) - now
        if hint is not None:
            preferred = usable[hint % len(usable)]
            if preferred in open_:
                return preferred, 0.0

        def left(i: int) -> float:
            remaining = self.budget(i, resource).remaining
            return float("inf") if remaining is None else remaining

        return max(open_, key=left), 0.0

    def update(self, index: int | None, headers: Any) -> str | None:
        """Read ``X-RateLimit-*`` answer headers; return the resource they are about."""
        resource = _header(headers, "X-RateLimit-Resource")
        limit = _int(_header(headers, "X-RateLimit-Limit"))
        remaining = _int(_header(headers, "X-RateLimit-Remaining"))
        reset = _int(_header(headers, "X-RateLimit-Reset"))
        if not resource or remaining is None:
            return resource or None
        budget = self.budget(index, resource)
        budget.limit = limit if limit is not None else budget.limit
        budget.remaining = remaining
        budget.reset = float(reset) if reset is not None else budget.reset
        return resource

    def spend_all(self, index: int | None, resource: str, reset: float | None) -> None:
        budget = self.budget(index, resource)
        budget.remaining = 0
        budget.reset = reset if reset is not None else self._clock() + 60.0

    def refuse(self, index: int) -> None:
        self._refused.add(index)


class NoUsableToken(Exception):
    pass


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip() if isinstance(value, str) else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
