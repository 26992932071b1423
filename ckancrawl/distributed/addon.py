"""Scrapy add-on that switches a crawl to distributed mode when ``CKANCRAWL_REDIS_URL`` is set.

Without that setting it changes nothing. With it, it sets (at add-on priority, so
settings.py and ``-s`` still win for anything they set explicitly):

- ``SCHEDULER``: :class:`ckancrawl.distributed.scheduler.RedisScheduler`
- ``DUPEFILTER_CLASS``: :class:`ckancrawl.distributed.dupefilter.RedisDupeFilter`
- scrapy-redis's ``SCHEDULER_QUEUE_CLASS`` (priority queue), ``SCHEDULER_QUEUE_KEY``
  and ``SCHEDULER_DUPEFILTER_KEY`` (``ckancrawl:<spider>:<run>:...``)
- the spider middleware :class:`~ckancrawl.distributed.seeding.SeedOnceMiddleware` and
  the extension :class:`~ckancrawl.distributed.workers.WorkerRegistry`

The Redis connection is made from ``CKANCRAWL_REDIS_URL`` by
:mod:`ckancrawl.distributed.connection` (no ``REDIS_URL``/``REDIS_PARAMS``: a password
goes in the ``CKANCRAWL_REDIS_PASSWORD`` environment variable, never in a setting).

A wrong run name, a URL with a password in it, or a SCHEDULER / DUPEFILTER_CLASS set
elsewhere that would silently keep the crawl local stops the crawl with a message.
"""
from __future__ import annotations

from typing import Any

from ckancrawl.distributed.connection import check_url
from ckancrawl.distributed.keys import DistributedConfigError, key_prefix, run_name

SCHEDULER = "ckancrawl.distributed.scheduler.RedisScheduler"
DUPEFILTER = "ckancrawl.distributed.dupefilter.RedisDupeFilter"


class DistributedAddon:
    def update_settings(self, settings: Any) -> None:
        url = settings.get("CKANCRAWL_REDIS_URL")
        if not url:
            return
        check_url(url)
        prefix = key_prefix("%(spider)s", run_name(settings.get("CKANCRAWL_REDIS_RUN")))
        for name, value in {
            "SCHEDULER": SCHEDULER,
            "DUPEFILTER_CLASS": DUPEFILTER,
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
            "SCHEDULER_QUEUE_KEY": f"{prefix}:requests",
            "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:dupefilter",
        }.items():
            settings.set(name, value, "addon")
        for name, wanted in (("SCHEDULER", SCHEDULER), ("DUPEFILTER_CLASS", DUPEFILTER)):
            if _path(settings.get(name)) != wanted:
                raise DistributedConfigError(
                    f"CKANCRAWL_REDIS_URL is set but {name} is {settings.get(name)!r}: distributed mode "
                    f"needs {wanted}; remove {name} from the settings or unset CKANCRAWL_REDIS_URL"
                )
        from ckancrawl.distributed.seeding import SeedOnceMiddleware
        from ckancrawl.distributed.workers import WorkerRegistry

        settings.setdefault_in_component_priority_dict("SPIDER_MIDDLEWARES", SeedOnceMiddleware, 50)
        settings.setdefault_in_component_priority_dict("EXTENSIONS", WorkerRegistry, 500)


def _path(value: Any) -> str:
    if isinstance(value, str):
        return value
    return f"{value.__module__}.{value.__qualname__}" if value is not None else ""
