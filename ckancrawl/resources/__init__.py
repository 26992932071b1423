"""Facts about the files a dataset links to (its resources): format, size, MD5.

- formats.py: the canonical format table and how declared formats, media types and
  URL extensions map to it;
- magic.py: the format from a file's first bytes;
- urls.py: the URL as fetched (normalised);
- address_guard.py: which addresses resource downloads may connect to;
- streaming.py: reading a body chunk by chunk (count, MD5, first bytes) in constant memory;
- download_handler.py: the download handler that streams resource bodies and checks
  addresses, for everything else Scrapy's own HTTP handler;
- report.py: ``python -m ckancrawl.resources.report``, files on several portals and
  per-portal totals from the raw metadata repository.

The pipeline is ckancrawl/pipelines/resource_facts.py.
"""
