"""Coordinates of a place from a Nominatim-compatible geocoder, optional and cached.

Settings:
- ``GEOCODER_URL``: the geocoder's search endpoint, e.g.
  ``https://nominatim.openstreetmap.org/search``. Unset (the default): no geocoding.
- ``GEOCODER_CACHE_FILE`` (``.services/geocoder-cache.json``): answers kept between
  runs, including "not found", so a place is asked for once.

Requests go through Scrapy in their own download slot (``DOWNLOAD_SLOTS`` in
settings.py: one at a time, 1 s apart, AutoThrottle told not to shorten the delay),
which keeps within Nominatim's usage policy of at most one request per second.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ckancrawl.failures import FetchError, decode_json

SLOT = "ckancrawl-geocoder"


class Geocoder:
    def __init__(self, spider: Any, url: str, cache_file: str) -> None:
        self.spider = spider
        self.url = url
        self.cache_path = Path(cache_file)
        self.cache: dict[str, list[float] | None] = {}
        #: Questions on their way: a second site in the same place waits for the first.
        self.asking: dict[str, asyncio.Future[tuple[float, float] | None]] = {}
        if self.cache_path.exists():
            try:
                self.cache = json.loads(self.cache_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                spider.logger.warning("Ignoring an unreadable geocoder cache at %s", self.cache_path)

    @classmethod
    def from_spider(cls, spider: Any) -> Geocoder | None:
        settings = spider.crawler.settings
        url = settings.get("GEOCODER_URL")
        if not url:
            return None
        return cls(spider, url, settings.get("GEOCODER_CACHE_FILE", ".services/geocoder-cache.json"))

    async def locate(self, query: dict[str, str]) -> tuple[float, float] | None:
        """(latitude, longitude) of the first match of a structured or free query."""
        key = json.dumps(query, sort_keys=True)
        stats = self.spider.crawler.stats
        if key in self.cache:
            stats.inc_value("geocoder/cache_hits")
            found = self.cache[key]
            return (found[0], found[1]) if found else None
        if key in self.asking:
            stats.inc_value("geocoder/cache_hits")
            return await asyncio.shield(self.asking[key])
        self.asking[key] = asyncio.ensure_future(self._ask(key, query))
        try:
            return await asyncio.shield(self.asking[key])
        finally:
            self.asking.pop(key, None)

    async def _ask(self, key: str, query: dict[str, str]) -> tuple[float, float] | None:
        self.spider.crawler.stats.inc_value("geocoder/requests")
        url = f"{self.url}?{urlencode({**query, 'format': 'json', 'limit': 1})}"
        response = await self.spider.fetch(url, download_slot=SLOT, autothrottle_dont_adjust_delay=True)
        if response.status >= 400:
            raise FetchError("http error", f"the geocoder answered HTTP {response.status}", response.status)
        places = decode_json(response)
        if not isinstance(places, list):
            raise FetchError("wrong shape", "the geocoder did not answer a list of places")
        found: list[float] | None = None
        if places and isinstance(places[0], dict):
            try:
                found = [float(places[0]["lat"]), float(places[0]["lon"])]
            except (KeyError, TypeError, ValueError):
                raise FetchError("wrong shape", "the geocoder's first place has no lat/lon") from None
        self.cache[key] = found
        self._save()
        return (found[0], found[1]) if found else None

    def _save(self) -> None:
        """Atomic replace, so a crash never leaves half a cache."""
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.cache_path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(self.cache, out, sort_keys=True)
        os.replace(temporary, self.cache_path)
