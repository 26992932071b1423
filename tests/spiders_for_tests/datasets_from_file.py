"""Yield HarvestedDataset items from a JSON file, to drive item pipelines in a real crawl.

``scrapy runspider tests/spiders_for_tests/datasets_from_file.py -a datasets=FILE``;
FILE holds a list of ``{"portal": ..., "raw": {...CKAN dataset...}}``. The spider makes
no request itself (everything the pipelines download goes through the engine), except
with ``-a fetch_url=URL``: that URL is downloaded as an ordinary request and a dataset
``fetched`` reports its status, body length and MD5.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import scrapy

from ckancrawl.items import HarvestedDataset


class DatasetsFromFile(scrapy.Spider):
    name = "datasets_from_file"

    def __init__(self, datasets: str, fetch_url: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entries = json.loads(Path(datasets).read_text(encoding="utf-8"))
        self.fetch_url = fetch_url

    async def start(self):
        if self.fetch_url:
            # An ordinary request (no resource fetch meta): Scrapy's own buffered path.
            response = await self.crawler.engine.download_async(scrapy.Request(self.fetch_url, dont_filter=True))
            self.entries.append({"raw": {
                "id": "fetched", "status": response.status, "fetched_bytes": len(response.body),
                "fetched_md5": hashlib.md5(response.body).hexdigest(),
            }})
        for entry in self.entries:
            raw = entry["raw"]
            yield HarvestedDataset(
                portal=entry.get("portal", "http://portal.example"),
                dataset_id=raw.get("id", ""),
                name=raw.get("name"),
                metadata_modified=raw.get("metadata_modified"),
                raw=raw,
                content_hash="sha256:" + hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest(),
                harvested_at="2026-11-23T12:00:00Z",
            )
