"""scrapy-redis's shared duplicate filter, with Scrapy's own request fingerprints.

scrapy-redis 0.9.1 hashes method, canonical URL and body itself; this uses the
crawler's ``request_fingerprinter`` instead, so ``REQUEST_FINGERPRINTER_CLASS`` and
the fingerprints of a one-process run mean the same thing here. Closing does not clear
the set: the run's keys are removed by
:class:`~ckancrawl.distributed.workers.WorkerRegistry` once the whole run is finished,
not when one of its processes stops.
"""
from __future__ import annotations

from typing import Any

from scrapy.http import Request
from scrapy_redis import defaults
from scrapy_redis.dupefilter import RFPDupeFilter

from ckancrawl.distributed.connection import sync_client


class RedisDupeFilter(RFPDupeFilter):
    def __init__(self, server: Any, key: str, debug: bool = False, fingerprinter: Any = None) -> None:
        super().__init__(server, key, debug)
        self.fingerprinter = fingerprinter

    @classmethod
    def from_spider(cls, spider: Any) -> "RedisDupeFilter":
        settings = spider.settings
        key = settings.get("SCHEDULER_DUPEFILTER_KEY", defaults.SCHEDULER_DUPEFILTER_KEY) % {"spider": spider.name}
        return cls(
            sync_client(settings.get("CKANCRAWL_REDIS_URL") or ""),
            key=key,
            debug=settings.getbool("DUPEFILTER_DEBUG"),
            fingerprinter=spider.crawler.request_fingerprinter,
        )

    def request_fingerprint(self, request: Request) -> str:
        if self.fingerprinter is None:
            return super().request_fingerprint(request)
        return self.fingerprinter.fingerprint(request).hex()

    def close(self, reason: str = "") -> None:
        pass
