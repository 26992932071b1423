"""Command line: catch up on catalog writes a crawl could not make.

    python -m ckancrawl.catalog replay sites [--run 2026-11-22T03:00:00Z ...] [--pending-dir DIR]
    python -m ckancrawl.catalog sync extensions [--dry-run]

``replay`` writes the time series rows that MongoDB holds and the datastore lacks (every
run, or the ``--run`` ones), then the rows of pending files (``--pending-dir``, default
DATASTORE_PENDING_DIR, when it exists). ``sync`` brings every catalog dataset up to date
with the newest stored snapshot of its entity.

Settings are the project's (ckancrawl/settings.py: CATALOG_URL, MONGODB_URI,
MONGODB_DATABASE, DATASTORE_*, CATALOG_*), overridden with ``-s NAME=VALUE`` as with
``scrapy crawl``. The API key comes from the environment (CKAN_API_KEY). Exit status:
0 when everything is written, 1 when something is not, 2 for a usage error.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pymongo import MongoClient

from ckancrawl.catalog.client import API_KEY_VARIABLE, CatalogClient, CatalogError, api_key_from_env
from ckancrawl.catalog.datastore import SeriesTable, TableProblem
from ckancrawl.catalog.pending import PendingRows
from ckancrawl.catalog.replay import RunReplay, replay_pending, replay_rows, sync_latest
from ckancrawl.catalog.series import SERIES_BY_NAME
from ckancrawl.catalog.sync import DatasetSync


def _settings(overrides: list[str]) -> Any:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    for override in overrides:
        name, equals, value = override.partition("=")
        if not equals:
            raise SystemExit(f"-s {override!r}: give NAME=VALUE")
        settings.set(name, value, priority="cmdline")
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ckancrawl.catalog", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="write time series rows the datastore lacks")
    sync = commands.add_parser("sync", help="sync catalog datasets with the newest stored snapshots")
    for command in (replay, sync):
        command.add_argument("series", choices=sorted(SERIES_BY_NAME))
        command.add_argument("--catalog", help="the catalog's URL (default: CATALOG_URL)")
        command.add_argument("-s", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    replay.add_argument("--run", action="append", dest="runs", metavar="RUN_TIMESTAMP",
                        help="only this run (repeatable); default: every run in MongoDB")
    replay.add_argument("--pending-dir", help="pending files to write too (default: DATASTORE_PENDING_DIR)")
    replay.add_argument("--no-mongodb", action="store_true", help="only the pending files")
    sync.add_argument("--dry-run", action="store_true", help="log what would change; write nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    settings = _settings(args.settings)
    key = api_key_from_env()
    if key is None:
        print(f"error: set {API_KEY_VARIABLE} to the API token of a catalog user who may write", file=sys.stderr)
        return 2
    url = (args.catalog or settings.get("CATALOG_URL") or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        print(f"error: the catalog URL {url!r} is not an http(s) URL; give --catalog URL", file=sys.stderr)
        return 2
    series = SERIES_BY_NAME[args.series]
    client = CatalogClient.from_settings(settings, url, key)
    try:
        if args.command == "replay":
            return _replay(args, settings, client, series)
        return _sync(args, settings, client, series)
    except (CatalogError, TableProblem) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _mongo(settings: Any) -> Any:
    uri = settings.get("MONGODB_URI")
    if not uri:
        raise SystemExit("error: MONGODB_URI is not set: the stored snapshots are in MongoDB")
    return MongoClient(uri, serverSelectionTimeoutMS=10_000)[settings.get("MONGODB_DATABASE") or "ckancrawl"]


def _replay(args: Any, settings: Any, client: CatalogClient, series: Any) -> int:
    table = SeriesTable.from_settings(client, series, settings)
    if not args.no_mongodb:
        database = _mongo(settings)

        def report(outcome: RunReplay) -> None:
            print(f"{series.name} run {outcome.run}: {outcome.in_mongodb} in MongoDB, {outcome.in_datastore} in "
                  f"the datastore, {outcome.written} rows written")

        replay_rows(table, database[series.name], args.runs, report)
        database.client.close()
    directory = args.pending_dir or settings.get("DATASTORE_PENDING_DIR") or "datastore-pending"
    pending = PendingRows(directory, series.name, table.destination)
    if pending.files():
        print(f"{series.name}: {replay_pending(table, pending)} pending rows written from {directory}")
    return 0


def _sync(args: Any, settings: Any, client: CatalogClient, series: Any) -> int:
    database = _mongo(settings)
    try:
        outcomes = sync_latest(DatasetSync(client, dry_run=args.dry_run,
                                             overwrite_profile=settings.getbool("CATALOG_PROFILE_OVERWRITE", False)), series,
                               database[f"{series.name}_latest"], settings.getint("CATALOG_SYNC_CONCURRENCY", 4),
                               settings.getint("CATALOG_SYNC_READ_BATCH", 50))
    finally:
        database.client.close()
    print(f"{series.name}: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
          if outcomes else f"{series.name}: no stored snapshot has a catalog dataset")
    return 1 if outcomes.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
