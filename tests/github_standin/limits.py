"""GitHub's rate limits as the stand-in enforces them.

Primary limits: a budget per identity (a token's user, or the client's IP when
anonymous) and per resource (``core`` for REST, ``graphql``), refilled when its window
ends. Every REST answer costs 1, except a 304 to an authenticated conditional request;
a GraphQL query costs its computed points. The ``X-RateLimit-*`` headers go on every
API answer.

Secondary limits: at most ``max_concurrent`` requests in flight per identity, and at
most ``points_per_minute`` per resource in any rolling minute (900 for REST, 2000 for
GraphQL on github.com).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

AUTHENTICATED_LIMITS = {"core": 5000, "graphql": 5000}
ANONYMOUS_LIMITS = {"core": 60, "graphql": 0}
SECONDARY_POINTS_PER_MINUTE = {"core": 900, "graphql": 2000}


@dataclass
class Budget:
    limit: int
    used: int
    reset: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class Budgets:
    def __init__(self, window: float = 3600.0, authenticated: dict[str, int] | None = None,
                 anonymous: dict[str, int] | None = None) -> None:
        self.window = window
        self.authenticated = {**AUTHENTICATED_LIMITS, **(authenticated or {})}
        self.anonymous = {**ANONYMOUS_LIMITS, **(anonymous or {})}
        self._budgets: dict[tuple[str, str], Budget] = {}
        self._lock = threading.Lock()

    def _budget(self, identity: str, resource: str) -> Budget:
        now = time.time()
        budget = self._budgets.get((identity, resource))
        if budget is None or budget.reset <= now:
            limits = self.anonymous if identity.startswith("ip:") else self.authenticated
            budget = Budget(limits.get(resource, 5000), 0, float(int(now + self.window)))
            self._budgets[(identity, resource)] = budget
        return budget

    def remaining(self, identity: str, resource: str) -> int:
        with self._lock:
            return self._budget(identity, resource).remaining

    def charge(self, identity: str, resource: str, points: int) -> None:
        with self._lock:
            self._budget(identity, resource).used += points

    def set_remaining(self, identity: str, resource: str, remaining: int, reset_in: float | None) -> None:
        with self._lock:
            budget = self._budget(identity, resource)
            budget.used = budget.limit - remaining
            if reset_in is not None:
                budget.reset = time.time() + reset_in

    def snapshot(self, identity: str, resource: str) -> Budget:
        with self._lock:
            b = self._budget(identity, resource)
            return Budget(b.limit, b.used, b.reset)

    def headers(self, identity: str, resource: str) -> dict[str, str]:
        b = self.snapshot(identity, resource)
        return {
            "X-RateLimit-Limit": str(b.limit),
            "X-RateLimit-Remaining": str(b.remaining),
            "X-RateLimit-Reset": str(int(b.reset + 0.999)),
            "X-RateLimit-Used": str(b.used),
            "X-RateLimit-Resource": resource,
        }

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                f"{identity}/{resource}": {"limit": b.limit, "used": b.used, "remaining": b.remaining, "reset": b.reset}
                for (identity, resource), b in self._budgets.items()
            }

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()


class SecondaryLimits:
    def __init__(self, max_concurrent: int = 100, points_per_minute: dict[str, int] | None = None,
                 window: float = 60.0) -> None:
        self.max_concurrent = max_concurrent
        self.points_per_minute = {**SECONDARY_POINTS_PER_MINUTE, **(points_per_minute or {})}
        self.window = window
        self._in_flight: dict[str, int] = {}
        self._recent: dict[tuple[str, str], deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def enter(self, identity: str) -> bool:
        """Count a request in flight; False if that is one too many."""
        with self._lock:
            count = self._in_flight.get(identity, 0) + 1
            self._in_flight[identity] = count
            return count <= self.max_concurrent

    def leave(self, identity: str) -> None:
        with self._lock:
            self._in_flight[identity] = max(0, self._in_flight.get(identity, 1) - 1)

    def charge(self, identity: str, resource: str, points: int) -> bool:
        """Record ``points``; False if the rolling minute is now over the limit."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault((identity, resource), deque())
            while recent and recent[0][0] <= now - self.window:
                recent.popleft()
            used = sum(p for _, p in recent)
            if used + points > self.points_per_minute.get(resource, 900):
                return False
            recent.append((now, points))
            return True
