"""Distributed crawls: several processes (or scrapyd nodes) share one crawl through Redis.

Off unless ``CKANCRAWL_REDIS_URL`` is set. Then :class:`DistributedAddon` (in ``ADDONS``)
puts scrapy-redis's shared scheduler queue and duplicate filter in place, adapted to
Scrapy 2.19 (``scheduler.py``, ``dupefilter.py``), and adds two components of ours:

- ``seeding.SeedOnceMiddleware``: the spider's ``start()`` (catalog paging, reading a
  URL file...) runs in one process only, the seeder; every start request and start item
  is claimed in Redis before it is let through, so a seeder that takes over from one
  that died, or a resumed run, never seeds the same thing twice.
- ``workers.WorkerRegistry``: agrees on one ``run_timestamp`` for all processes, keeps
  a heartbeat per process, keeps an idle process alive while another one may still
  produce work, and removes the run's keys when the last process finishes it.

What is shared is every request that goes through the scheduler: the requests yielded
by ``start()`` and by callbacks, redirects and retries. A callback runs entirely in the
process that took its request; its ``fetch()`` calls (``engine.download_async``) do
not go through the scheduler and stay in that process. So the unit of distribution is
one scheduled request: one site for ``sites`` (its home page request and everything its
callback then asks), one portal for ``harvest``, or one id range of a large portal
(HARVEST_SPLIT, 16 by default here; the ranges report to the run's ledger, see
:mod:`ckancrawl.split_ledger`, and the last one concludes the portal).

A process takes a request from the shared queue only while it has room
(``CKANCRAWL_REDIS_LOCAL_LIMIT``), so a fast process does not empty the queue into its
own memory while the others wait.

Settings (see README.md): ``CKANCRAWL_REDIS_URL``, ``CKANCRAWL_REDIS_RUN``,
``CKANCRAWL_REDIS_LOCAL_LIMIT``, ``CKANCRAWL_REDIS_HEARTBEAT``, ``CKANCRAWL_REDIS_KEEP``;
a Redis password comes only from the ``CKANCRAWL_REDIS_PASSWORD`` environment variable.

Every process of one run must be given the same spider arguments and
``CKANCRAWL_REDIS_RUN`` (and the same ``run_timestamp``, or none); a scheduler that
starts one run per week should name each run (``CKANCRAWL_REDIS_RUN=sites-2026-11-22``)
so that an interrupted week is never resumed by the next one. Redis Cluster is not
supported (the coordination scripts touch keys they compute).
"""
from ckancrawl.distributed.addon import DistributedAddon

__all__ = ["DistributedAddon"]
