"""Time series rows that could not be written yet, kept on disk until they are.

When a crawl ends with rows the datastore did not take (the catalog down, the table
missing or different), they are saved as JSON lines in DATASTORE_PENDING_DIR, one file
per series and crawl: ``<series>-<destination>-<UTC time>-<pid>.jsonl``, where
``destination`` is a short hash of the catalog URL, dataset and resource, so that a
crawl pointed at another catalog (a test one) never writes them there. The next crawl's
datastore pipeline loads the pending files of its series and destination, writes the
rows with its own, and deletes the files only once their rows are in the datastore. Rows are upserted on their
key, so writing one twice is harmless.

This works without MongoDB; with MongoDB, ``python -m ckancrawl.catalog replay`` can
also find and write missing rows from the stored snapshots.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


def destination(catalog_url: str, dataset: str, resource: str) -> str:
    """A short, stable name for where rows go."""
    return hashlib.sha256(f"{catalog_url.rstrip('/')}\n{dataset}\n{resource}".encode()).hexdigest()[:10]


class PendingRows:
    def __init__(self, directory: str | Path, series: str, destination: str):
        self.directory = Path(directory)
        self.series = series
        self.prefix = f"{series}-{destination}"

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{self.prefix}-*.jsonl"))

    def load(self) -> tuple[list[Path], list[dict[str, Any]]]:
        """The pending files of this series and their rows (a torn last line is skipped)."""
        paths, rows = self.files(), []
        for path in paths:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        return paths, rows

    def save(self, rows: list[dict[str, Any]]) -> Path:
        """Write rows to a new file, durably (temporary file, fsync, rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.prefix}-{stamp}-{os.getpid()}.jsonl"
        temporary = path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        return path

    @staticmethod
    def remove(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
