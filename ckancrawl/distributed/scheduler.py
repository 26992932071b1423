"""scrapy-redis 0.9.1's scheduler, fitted to Scrapy 2.19 and to a shared crawl.

What differs from ``scrapy_redis.scheduler.Scheduler``:

- Stats are counted without the ``spider`` argument (deprecated in Scrapy 2.19: every
  request would raise a deprecation warning).
- ``next_request`` never blocks: scrapy-redis's ``SCHEDULER_IDLE_BEFORE_CLOSE`` pops
  with BRPOP, which would stall the event loop. Idle processes are kept alive by
  :class:`~ckancrawl.distributed.workers.WorkerRegistry` instead.
- A process takes a request from the shared queue only while it holds fewer than
  ``CKANCRAWL_REDIS_LOCAL_LIMIT`` requests (default ``CONCURRENT_REQUESTS``) being
  downloaded or handled by a callback. Without this, one process would empty the queue
  within a second: a request's download is quick, the callback's work (its own
  ``fetch()`` calls) is what takes time.
- When Redis stops answering, the requests this process schedules are kept and done
  here instead of being lost, and nothing is taken from the queue until it answers
  again (:class:`~ckancrawl.distributed.workers.WorkerRegistry` stops the process with
  the reason ``redis_unreachable`` if that lasts).
- It connects with :mod:`ckancrawl.distributed.connection` (password from the
  environment, never from settings) and reports an unreachable Redis as such.
- The queue is kept when a process closes (as with ``SCHEDULER_PERSIST``, which is not
  read): the last process of a finished run removes it. ``SCHEDULER_FLUSH_ON_START``,
  ``SCHEDULER_IDLE_BEFORE_CLOSE``, ``REDIS_URL`` and ``REDIS_PARAMS`` are not read either.

The queue is scrapy-redis's priority queue (a sorted set; each pop is one atomic
MULTI/EXEC, so a request goes to exactly one process). Requests are pickled: their
callbacks must be spider methods and their ``cb_kwargs`` picklable.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from scrapy.http import Request
from scrapy_redis.scheduler import Scheduler

from ckancrawl.distributed.connection import PASSWORD_ENV, sync_client
from ckancrawl.distributed.keys import DistributedConfigError

logger = logging.getLogger(__name__)


class RedisScheduler(Scheduler):
    crawler: Any = None
    local_limit: int = 0
    #: Requests scheduled while Redis did not answer: done by this process.
    held: deque
    #: When Redis stopped answering (monotonic time), None while it answers.
    unreachable_since: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> "RedisScheduler":
        import redis.exceptions

        settings = crawler.settings
        url = settings.get("CKANCRAWL_REDIS_URL") or ""
        server = sync_client(url)
        try:
            server.ping()
        except redis.exceptions.AuthenticationError as error:
            raise DistributedConfigError(
                f"Redis at {url} refused the password ({error}); check {PASSWORD_ENV}"
            ) from None
        except redis.exceptions.ConnectionError as error:
            raise DistributedConfigError(
                f"Redis at {url} does not answer ({error}); start it, or unset CKANCRAWL_REDIS_URL "
                "to crawl in one process"
            ) from None
        instance = cls(
            server=server,
            persist=True,
            queue_key=settings.get("SCHEDULER_QUEUE_KEY"),
            queue_cls=settings.get("SCHEDULER_QUEUE_CLASS"),
            dupefilter_key=settings.get("SCHEDULER_DUPEFILTER_KEY"),
            dupefilter_cls=settings.get("DUPEFILTER_CLASS"),
        )
        instance.stats = crawler.stats
        instance.crawler = crawler
        instance.local_limit = settings.getint("CKANCRAWL_REDIS_LOCAL_LIMIT") or settings.getint(
            "CONCURRENT_REQUESTS"
        )
        instance.held = deque()
        return instance

    def enqueue_request(self, request: Request) -> bool:
        import redis.exceptions

        try:
            if not request.dont_filter and self.df.request_seen(request):
                self.df.log(request, self.spider)
                return False
            self.queue.push(request)
        except redis.exceptions.RedisError as error:
            self._unreachable(error)
            self.held.append(request)
            self._count("distributed/requests/held_locally")
            return True
        self._reachable()
        self._count("distributed/requests/pushed")
        return True

    def next_request(self) -> Request | None:
        import redis.exceptions

        if not self.has_room():
            return None
        if self.held:
            return self.held.popleft()
        try:
            request = self.queue.pop(0)
        except redis.exceptions.RedisError as error:
            self._unreachable(error)
            return None
        self._reachable()
        if request is not None:
            self._count("distributed/requests/taken")
        return request

    def has_pending_requests(self) -> bool:
        import redis.exceptions

        if self.held:
            return True
        try:
            return len(self) > 0
        except redis.exceptions.RedisError as error:
            self._unreachable(error)
            return False

    def _unreachable(self, error: Exception) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = time.monotonic()
            logger.error("Redis stopped answering (%s): requests this process schedules are done here "
                         "until it answers again", error)

    def _reachable(self) -> None:
        if self.unreachable_since is not None:
            self.unreachable_since = None
            logger.info("Redis answers again")

    def _count(self, key: str) -> None:
        if self.stats:
            self.stats.inc_value(key)

    def has_room(self) -> bool:
        """Whether this process may take another request from the shared queue."""
        return not self.local_limit or self._local_load() < self.local_limit

    def _local_load(self) -> int:
        """Downloads in flight plus responses waiting for or inside their callback."""
        engine = getattr(self.crawler, "engine", None)
        if engine is None:
            return 0
        slot = getattr(engine.scraper, "slot", None)
        scraping = len(slot.active) + len(slot.queue) if slot is not None else 0
        return scraping + len(engine.downloader.active)
