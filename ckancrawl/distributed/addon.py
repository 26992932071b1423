"""Scrapy add-on that switches a crawl to distributed mode when ``CKANCRAWL_REDIS_URL`` is set.

Without that setting it changes nothing. With it, it sets (at add-on priority, so
settings.py and ``-s`` still win for anything they set explicitly):

- ``SCHEDULER``: :class:`ckancrawl.distributed.scheduler.RedisScheduler`
- ``DUPEFILTER_CLASS``: :class:`ckancrawl.distributed.dupefilter.RedisDupeFilter`
- scrapy-redis's ``REDIS_URL``, ``SCHEDULER_QUEUE_CLASS`` (priority queue),
  ``SCHEDULER_QUEUE_KEY``, ``SCHEDULER_DUPEFILTER_KEY`` (``ckancrawl:<spider>:<run>:...``),
  ``SCHEDULER_PERSIST`` (True: the queue outlives one process; the last process of a
  finished run removes it), ``SCHEDULER_FLUSH_ON_START`` (False),
  ``SCHEDULER_IDLE_BEFORE_CLOSE`` (0: never a blocking pop)
- the spider middleware :class:`~ckancrawl.distributed.seeding.SeedOnceMiddleware` and
  the extension :class:`~ckancrawl.distributed.workers.WorkerRegistry`

A wrong run name, or a SCHEDULER / DUPEFILTER_CLASS set elsewhere that would silently
keep the crawl local, stops the crawl with a message.
"""
from __future__ import annotations

from typing import Any

from ckancrawl.distributed.keys import DistributedConfigError, key_prefix, run_name

SCHEDULER = "ckancrawl.distributed.scheduler.RedisScheduler"
DUPEFILTER = "ckancrawl.distributed.dupefilter.RedisDupeFilter"


class DistributedAddon:
    def update_settings(self, settings: Any) -> None:
        url = settings.get("CKANCRAWL_REDIS_URL")
        if not url:
            return
        prefix = key_prefix("%(spider)s", run_name(settings.get("CKANCRAWL_REDIS_RUN")))
        for name, value in {
            "SCHEDULER": SCHEDULER,
            "DUPEFILTER_CLASS": DUPEFILTER,
            "REDIS_URL": url,
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
            "SCHEDULER_QUEUE_KEY": f"{prefix}:requests",
            "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:dupefilter",
            "SCHEDULER_PERSIST": True,
            "SCHEDULER_FLUSH_ON_START": False,
            "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
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
