"""Yield HarvestedDataset items from a JSON file, to drive item pipelines in a real crawl.

``scrapy runspider tests/spiders_for_tests/datasets_from_file.py -a datasets=FILE``;
FILE holds a list of ``{"portal": ..., "raw": {...CKAN dataset...}}``. The spider makes
no request itself: everything the pipelines download goes through the engine.
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

    def __init__(self, datasets: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entries = json.loads(Path(datasets).read_text(encoding="utf-8"))

    async def start(self):
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
