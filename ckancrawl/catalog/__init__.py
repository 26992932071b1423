"""Writing to the CKAN Ecosystem Catalog: dataset sync and datastore time series.

- :mod:`.client`: ckanapi behind timeouts, retries with backoff, a bound on concurrent
  writes and errors that say what to do (CatalogError kinds). Blocking: run it in a
  worker thread.
- :mod:`.fields`: which item fields update which catalog fields, and what "the same
  value" means for each (declared once).
- :mod:`.sync`: read, diff by meaning, patch only what changed, verify, restore.
- :mod:`.series`: the time series tables' columns and key (declared once).
- :mod:`.datastore`: find, create and check a series table; upsert rows.
- :mod:`.pending`: rows a crawl could not write, kept for the next one.
- :mod:`.replay` and ``python -m ckancrawl.catalog``: catch up from MongoDB.

The Scrapy side is in ckancrawl/pipelines/catalog_sync.py and datastore_series.py.
"""
