"""What crawls that write to the test catalog share: the pipelines, their settings, and
reading the results back (catalog datasets, datastore rows)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ckancrawl.catalog.client import CatalogClient
from ckancrawl.catalog.datastore import SeriesTable
from ckancrawl.catalog.series import Series

#: The project's pipelines plus the two that write to the catalog, at the priorities
#: proposed for settings.py.
PIPELINES = {
    "ckancrawl.pipelines.mongo_keys.MongoKeysPipeline": 200,
    "ckancrawl.pipelines.mongodb.MongoPipeline": 300,
    "ckancrawl.pipelines.catalog_sync.CatalogSyncPipeline": 400,
    "ckancrawl.pipelines.datastore_series.DatastoreSeriesPipeline": 500,
}


def catalog_settings(catalog: Any, directory: Path, **extra: Any) -> dict[str, str]:
    """Settings for a crawl that syncs the catalog and writes the time series (fast retries)."""
    settings = {
        "ITEM_PIPELINES": json.dumps(PIPELINES),
        "CATALOG_SYNC_ENABLED": "True",
        "DATASTORE_SERIES_ENABLED": "True",
        "DATASTORE_SERIES_CREATE": "True",
        "DATASTORE_SERIES_OWNER_ORG": catalog.org,
        "DATASTORE_PENDING_DIR": str(directory / "pending"),
        "DATASTORE_FLUSH_INTERVAL": "1",
        "CATALOG_RETRY_BACKOFF": "0.05",
        "CATALOG_RETRY_BACKOFF_MAX": "0.2",
        "CATALOG_TIMEOUT": "5",
        "CATALOG_DOWN_PAUSE": "1",
        "MONGODB_SPILL_DIR": str(directory / "mongodb-spill"),
    }
    settings.update({key: str(value) for key, value in extra.items()})
    return settings


def series_table(catalog: Any, series: Series, dataset: str, resource: str | None = None) -> SeriesTable:
    client = CatalogClient(catalog.url, catalog.api_key, retry_backoff=0.05)
    return SeriesTable(client, series, dataset, resource or series.default_resource)


def series_rows(catalog: Any, series: Series, dataset: str, resource: str | None = None) -> list[dict[str, Any]]:
    """Every row of a series table, without the datastore's ``_id``."""
    table = series_table(catalog, series, dataset, resource)
    try:
        return [{k: v for k, v in row.items() if k != "_id"} for row in table.rows()]
    finally:
        table.client.close()
