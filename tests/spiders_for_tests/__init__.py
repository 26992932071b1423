"""Spiders and extensions that exist for tests only; run with ``scrapy runspider FILE``
(the project loads spiders from ckancrawl.spiders alone)."""
