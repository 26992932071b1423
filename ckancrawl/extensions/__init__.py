"""Scrapy extensions of ckancrawl: reporting and bookkeeping around a crawl."""
