"""The Redis keys of one distributed run, and the run's name.

Every key of a run starts with ``ckancrawl:<spider>:<run>:``; processes that run the
same spider with the same ``CKANCRAWL_REDIS_RUN`` share them, and nothing else does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_RUN = "default"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class DistributedConfigError(ValueError):
    """A distributed-mode setting that cannot work; the message says how to fix it."""


def run_name(value: str | None) -> str:
    """The run name from ``CKANCRAWL_REDIS_RUN``: letters, digits, ``.``, ``_``, ``-``."""
    name = (value or "").strip() or DEFAULT_RUN
    if not _RUN_NAME.match(name):
        raise DistributedConfigError(
            f"CKANCRAWL_REDIS_RUN={name!r} is not a usable run name: use up to 100 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit (for example harvest-2026-11-22)"
        )
    return name


def key_prefix(spider_name: str, run: str) -> str:
    """``spider_name`` may be scrapy-redis's ``%(spider)s`` placeholder."""
    return f"ckancrawl:{spider_name}:{run}"



@dataclass(frozen=True)
class RunKeys:
    prefix: str

    @classmethod
    def of(cls, spider_name: str, run: str) -> "RunKeys":
        return cls(key_prefix(spider_name, run))

    @property
    def requests(self) -> str:
        """scrapy-redis's priority queue (sorted set of pickled requests)."""
        return f"{self.prefix}:requests"

    @property
    def dupefilter(self) -> str:
        """Fingerprints of the scheduled requests that were not ``dont_filter``."""
        return f"{self.prefix}:dupefilter"

    @property
    def start_claims(self) -> str:
        """What ``start()`` output has been let through already (see seeding.py)."""
        return f"{self.prefix}:start-claims"

    @property
    def seeder(self) -> str:
        """The worker id of the process running ``start()``; expires if it dies."""
        return f"{self.prefix}:seeder"

    @property
    def seeded(self) -> str:
        """Present once ``start()`` was read to its end."""
        return f"{self.prefix}:seeded"

    @property
    def run_timestamp(self) -> str:
        return f"{self.prefix}:run-timestamp"

    @property
    def ledger(self) -> str:
        """Results of the parts of split work, per work (see ckancrawl/split_ledger.py)."""
        return f"{self.prefix}:ledger"

    @property
    def workers(self) -> str:
        """The set of worker ids that joined and have not left."""
        return f"{self.prefix}:workers"

    @property
    def heartbeat_prefix(self) -> str:
        return f"{self.prefix}:worker:"

    def heartbeat(self, worker_id: str) -> str:
        """``busy`` or ``idle``, expiring when the worker stops beating."""
        return self.heartbeat_prefix + worker_id

    def run_state(self) -> list[str]:
        """The keys that make up the run (heartbeats aside)."""
        return [*self.kept(), self.seeder]

    def kept(self) -> list[str]:
        """The keys kept for ``CKANCRAWL_REDIS_KEEP`` after the last heartbeat (the
        seeder lock keeps its own short expiry)."""
        return [self.requests, self.dupefilter, self.start_claims, self.seeded, self.run_timestamp,
                self.workers, self.ledger]
