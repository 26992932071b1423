"""Report on the resource facts of the raw metadata repository.

    python -m ckancrawl.resources.report [--mongodb-uri URI] [--database NAME]
        [--portal URL ...] [--include-deleted] [--min-size BYTES] [--limit N] [--json]
        [--timeout SECONDS]

Two sections, from the current documents of ``raw_datasets`` (datasets marked deleted
are left out unless ``--include-deleted``; documents kept in GridFS because of their
size are read from there):

1. Files published on more than one portal: resources with the same MD5 (``full``
   mode facts) on at least two portals; per file its size, format(s), and per portal how
   many resources carry it and one of their URLs. Largest files first; ``--limit``
   (100) of them in the text report, all in ``--json``. Empty files are left out
   (``--min-size``, 1 byte).
2. Per portal: datasets, resources, how many have a known size and their total size,
   how many have an MD5 and how many distinct MD5s, and the count of resources by
   canonical format (``unknown`` when none was found).

``--portal`` limits both sections to datasets of these portals (as stored: normalised
portal URLs). The MongoDB server is MONGODB_URI (option, else the environment or the
project settings), the database MONGODB_DATABASE (``ckancrawl``). The aggregation runs
in MongoDB (``$unwind``/``$group``, allowDiskUse), so the report's own memory does not
grow with the number of resources. Exit status: 0, or 2 when MongoDB cannot be used.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ckancrawl.items import HarvestedDataset
from ckancrawl.pipelines.mongo_keys import decode_keys

DATASETS = HarvestedDataset.mongo_collection


@dataclass
class SharedFile:
    md5: str
    size: int | None
    formats: list[str]
    #: portal -> {"resources": n, "url": one of them}
    portals: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def resources(self) -> int:
        return sum(entry["resources"] for entry in self.portals.values())

    def as_dict(self) -> dict[str, Any]:
        return {"md5": self.md5, "size": self.size, "formats": self.formats, "resources": self.resources,
                "portals": [{"portal": p, **e} for p, e in sorted(self.portals.items())]}


@dataclass
class PortalSummary:
    portal: str
    datasets: int = 0
    resources: int = 0
    sized: int = 0
    total_size: int = 0
    hashed: int = 0
    distinct_md5: int = 0
    formats: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "formats": dict(sorted(self.formats.items(), key=lambda kv: (-kv[1], kv[0])))}


class FactsReport:
    """Reads the repository; one instance per database."""

    def __init__(self, db: Any, portals: list[str] | None = None, include_deleted: bool = False, min_size: int = 1):
        self.collection = db[DATASETS]
        self.db = db
        self.match: dict[str, Any] = {}
        if not include_deleted:
            self.match["deleted"] = {"$ne": True}
        if portals:
            self.match["portal"] = {"$in": portals}
        self.min_size = min_size

    # -- documents kept in GridFS ----------------------------------------------------------

    def _gridfs_facts(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(portal, resource facts) of the documents whose facts are in GridFS."""
        import gridfs

        query = {**self.match, "stored_in.gridfs": {"$exists": True}}
        for doc in self.collection.find(query, {"portal": 1, "stored_in": 1}):
            where = doc["stored_in"]
            bucket = gridfs.GridFS(self.db, collection=where["gridfs"])
            try:
                content = json.loads(bucket.get(where["file_id"]).read())
            except (gridfs.errors.NoFile, ValueError):
                continue
            facts = decode_keys(content.get("resource_facts"))
            if isinstance(facts, list):
                yield doc["portal"], [f for f in facts if isinstance(f, dict)]

    # -- files on several portals -------------------------------------------------------------

    def shared_files(self) -> list[SharedFile]:
        per_portal = [
            {"$match": {**self.match, "resource_facts": {"$type": "array"}}},
            {"$project": {"portal": 1, "resource_facts": 1}},
            {"$unwind": "$resource_facts"},
            {"$match": {"resource_facts.md5": {"$type": "string"}}},
            {"$group": {
                "_id": {"md5": "$resource_facts.md5", "portal": "$portal"},
                "resources": {"$sum": 1},
                "url": {"$first": "$resource_facts.url"},
                "size": {"$max": "$resource_facts.size"},
                "formats": {"$addToSet": "$resource_facts.format"},
            }},
        ]
        by_md5 = [
            {"$group": {
                "_id": "$_id.md5",
                "portals": {"$push": {"portal": "$_id.portal", "resources": "$resources", "url": "$url"}},
                "size": {"$max": "$size"},
                "formats": {"$push": "$formats"},
            }},
        ]
        files: dict[str, SharedFile] = {}

        def take(row: dict[str, Any]) -> None:
            found = files.setdefault(row["_id"], SharedFile(row["_id"], None, []))
            found.size = _max(found.size, row.get("size"))
            for formats in row.get("formats") or []:
                for name in formats if isinstance(formats, list) else [formats]:
                    if name and name not in found.formats:
                        found.formats.append(name)
            for entry in row["portals"]:
                current = found.portals.setdefault(entry["portal"], {"resources": 0, "url": entry.get("url")})
                current["resources"] += entry["resources"]

        # Facts kept in GridFS join the ones in documents: the MD5s they hold are looked up
        # in full, the others only when they are on two portals already.
        extra: dict[str, dict[str, Any]] = {}
        for portal, facts in self._gridfs_facts():
            for fact in facts:
                md5 = fact.get("md5")
                if isinstance(md5, str):
                    row = extra.setdefault(md5, {"_id": md5, "size": None, "formats": [], "portals": []})
                    row["size"] = _max(row["size"], fact.get("size"))
                    row["formats"].append(fact.get("format"))
                    row["portals"].append({"portal": portal, "resources": 1, "url": fact.get("url")})
        pipeline = per_portal + by_md5 + [{"$match": {"portals.1": {"$exists": True}}}]
        for row in self.collection.aggregate(pipeline, allowDiskUse=True):
            take(row)
        if extra:
            lookup = per_portal[:4] + [{"$match": {"resource_facts.md5": {"$in": sorted(extra)}}}] + per_portal[4:] + by_md5
            for row in self.collection.aggregate(lookup, allowDiskUse=True):
                if row["_id"] not in files:
                    take(row)
            for row in extra.values():
                take(row)
        shared = [f for f in files.values() if len(f.portals) > 1 and (f.size is None or f.size >= self.min_size)]
        shared.sort(key=lambda f: (-(f.size or 0), -len(f.portals), f.md5))
        return shared

    # -- per portal ---------------------------------------------------------------------------

    def portals(self) -> list[PortalSummary]:
        summaries: dict[str, PortalSummary] = {}

        def summary(portal: str) -> PortalSummary:
            return summaries.setdefault(portal, PortalSummary(portal))

        for row in self.collection.aggregate(
            [{"$match": self.match}, {"$group": {"_id": "$portal", "datasets": {"$sum": 1}}}], allowDiskUse=True
        ):
            summary(row["_id"]).datasets = row["datasets"]
        is_size = {"$isNumber": "$resource_facts.size"}
        is_md5 = {"$eq": [{"$type": "$resource_facts.md5"}, "string"]}
        for row in self.collection.aggregate([
            {"$match": {**self.match, "resource_facts": {"$type": "array"}}},
            {"$project": {"portal": 1, "resource_facts": 1}},
            {"$unwind": "$resource_facts"},
            {"$group": {
                "_id": {"portal": "$portal", "format": "$resource_facts.format"},
                "resources": {"$sum": 1},
                "sized": {"$sum": {"$cond": [is_size, 1, 0]}},
                "bytes": {"$sum": {"$cond": [is_size, "$resource_facts.size", 0]}},
                "hashed": {"$sum": {"$cond": [is_md5, 1, 0]}},
            }},
        ], allowDiskUse=True):
            s = summary(row["_id"]["portal"])
            name = row["_id"].get("format") or "unknown"
            s.formats[name] = s.formats.get(name, 0) + row["resources"]
            s.resources += row["resources"]
            s.sized += row["sized"]
            s.total_size += row["bytes"]
            s.hashed += row["hashed"]
        for row in self.collection.aggregate([
            {"$match": {**self.match, "resource_facts": {"$type": "array"}}},
            {"$project": {"portal": 1, "resource_facts": 1}},
            {"$unwind": "$resource_facts"},
            {"$match": {"resource_facts.md5": {"$type": "string"}}},
            {"$group": {"_id": {"portal": "$portal", "md5": "$resource_facts.md5"}}},
            {"$group": {"_id": "$_id.portal", "distinct": {"$sum": 1}}},
        ], allowDiskUse=True):
            summary(row["_id"]).distinct_md5 = row["distinct"]
        gridfs_md5: dict[str, set[str]] = defaultdict(set)
        for portal, facts in self._gridfs_facts():
            s = summary(portal)
            for fact in facts:
                s.resources += 1
                name = fact.get("format") or "unknown"
                s.formats[name] = s.formats.get(name, 0) + 1
                if isinstance(fact.get("size"), int) and not isinstance(fact.get("size"), bool):
                    s.sized += 1
                    s.total_size += fact["size"]
                if isinstance(fact.get("md5"), str):
                    s.hashed += 1
                    gridfs_md5[portal].add(fact["md5"])
        # An MD5 seen only in GridFS documents adds to the distinct count (approximately:
        # one also present in ordinary documents is counted twice; such portals are rare).
        for portal, md5s in gridfs_md5.items():
            summary(portal).distinct_md5 += len(md5s)
        return sorted(summaries.values(), key=lambda s: s.portal)


def _max(a: Any, b: Any) -> Any:
    numbers = [v for v in (a, b) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


def human_size(size: int | None) -> str:
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def render_text(shared: list[SharedFile], portals: list[PortalSummary], limit: int) -> str:
    lines = []
    resources = sum(f.resources for f in shared)
    files = f"{len(shared)} file" + ("" if len(shared) == 1 else "s")
    lines.append(f"Files published on more than one portal (same MD5): {files}, {resources} resources")
    for f in shared[:limit]:
        formats = ",".join(f.formats) or "unknown"
        lines.append(f"  {f.md5}  {human_size(f.size):>10}  {formats:<10}  on {len(f.portals)} portals, {f.resources} resources")
        for portal, entry in sorted(f.portals.items()):
            lines.append(f"      {portal}  ({entry['resources']})  {entry['url']}")
    if len(shared) > limit:
        lines.append(f"  ... {len(shared) - limit} more (--limit, or --json for all)")
    lines.append("")
    lines.append("Per portal:")
    lines.append(f"  {'portal':<40} {'datasets':>8} {'resources':>9} {'sized':>7} {'total size':>11} {'hashed':>7} {'distinct MD5':>12}")
    for s in portals:
        lines.append(
            f"  {s.portal:<40} {s.datasets:>8} {s.resources:>9} {s.sized:>7} {human_size(s.total_size):>11} "
            f"{s.hashed:>7} {s.distinct_md5:>12}"
        )
        formats = ", ".join(f"{name} {count}" for name, count in sorted(s.formats.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"      formats: {formats or 'none'}")
    return "\n".join(lines) + "\n"


def _default_uri() -> str | None:
    if os.environ.get("MONGODB_URI"):
        return os.environ["MONGODB_URI"]
    try:
        from scrapy.utils.project import get_project_settings

        return get_project_settings().get("MONGODB_URI")
    except Exception:  # no project settings: the option is required
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ckancrawl.resources.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mongodb-uri", default=None, help="MongoDB server (default: MONGODB_URI)")
    parser.add_argument("--database", default=os.environ.get("MONGODB_DATABASE", "ckancrawl"))
    parser.add_argument("--portal", action="append", default=[], help="only these portals (repeatable)")
    parser.add_argument("--include-deleted", action="store_true", help="count datasets marked deleted too")
    parser.add_argument("--min-size", type=int, default=1, help="smallest shared file reported, in bytes (1)")
    parser.add_argument("--limit", type=int, default=100, help="shared files listed in the text report (100)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to find the MongoDB server (10)")
    args = parser.parse_args(argv)
    uri = args.mongodb_uri or _default_uri()
    if not uri:
        parser.error("no MongoDB server: pass --mongodb-uri or set MONGODB_URI")
    try:
        with MongoClient(uri, serverSelectionTimeoutMS=int(args.timeout * 1000)) as client:
            report = FactsReport(client[args.database], args.portal, args.include_deleted, args.min_size)
            shared = report.shared_files()
            portals = report.portals()
    except PyMongoError as error:
        from ckancrawl.pipelines.mongodb import redact_uri

        print(f"MongoDB at {redact_uri(uri)} could not be read: {error}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"shared_files": [f.as_dict() for f in shared], "portals": [p.as_dict() for p in portals]},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(shared, portals, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
