"""Correctness of recorded values against the world's ground truth, value by value.

Five values are judged for every portal: ckan_version, extensions, num_datasets,
num_organizations, num_groups. Each recorded value is one of:

- ``right``: it says what the truth says (both unknown counts as right);
- ``wrong``: a value is recorded and it is not the truth, including a value where the
  truth is unknown (the original's "0" for a failed call);
- ``unknown``: nothing recorded (None) where the truth knows the value. For the spider,
  ``unknown_without_reason`` counts those without a reason in ``failure`` or ``errors``.

The original's CSV is read by meaning, leniently: "" is unknown, counts are integers,
``extensions`` is decoded from its JSON and read as plugin names whatever the shape (a
list, a space-separated string, the keys of a dict), so only what it measured wrong is
held against it, not the shape it stored it in.
"""
from __future__ import annotations

import collections
import json
import re
from typing import Any, Iterable, Mapping

from tests.world.launcher import RunningWorld, WorldPortal

VALUES = ("ckan_version", "extensions", "num_datasets", "num_organizations", "num_groups")
VERDICTS = ("right", "wrong", "unknown")
#: Where the spider records why a value is unknown.
REASON_KEYS = {
    "ckan_version": ("status_show",),
    "extensions": ("status_show",),
    "num_datasets": ("package_search", "package_list"),
    "num_organizations": ("organization_list",),
    "num_groups": ("group_list",),
}
#: Kept in the report per tool and verdict, so a reader sees what went wrong.
EXAMPLES = 12


def same(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want == got
    if isinstance(want, int):
        try:
            return int(str(got).strip()) == want
        except ValueError:
            return False
    if isinstance(want, list):
        return isinstance(got, (list, tuple)) and sorted(map(str, got)) == sorted(want)
    return str(want) == str(got)


def verdict(want: Any, got: Any) -> str:
    if got is None:
        return "right" if want is None else "unknown"
    if want is None:
        return "wrong"
    return "right" if same(want, got) else "wrong"


def original_values(row: Mapping[str, str]) -> dict[str, Any]:
    """A ckan_stats.csv row as values (see the module docstring)."""
    values: dict[str, Any] = {"ckan_version": (row.get("ckan_version") or "").strip() or None}
    for name in ("num_datasets", "num_organizations", "num_groups"):
        text = (row.get(name) or "").strip()
        values[name] = int(text) if text.lstrip("-").isdigit() else (text or None)
    values["extensions"] = _plugin_names(row.get("extensions") or "")
    return values


def _plugin_names(text: str) -> list[str] | str | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, str):
        names = re.split(r"[\s,]+", value)
    elif isinstance(value, dict):
        names = [str(key) for key in value]
    elif isinstance(value, list):
        names = [str(entry.get("name")) if isinstance(entry, dict) else str(entry) for entry in value]
    else:
        return text
    return sorted({name for name in names if name})


def _cause(want: Any, got: Any) -> str:
    """Why a wrong value is wrong, in a few words (for the report's breakdown)."""
    if want is None:
        return f"{got!r} where the truth is unknown"
    if isinstance(want, int) and not isinstance(want, bool):
        try:
            number = int(str(got))
        except ValueError:
            return "not a number"
        if number == 0:
            return "0 for a failed call"
        if number == 1000 and want > 1000:
            return "1000: the list cap"
        return "another number"
    return "another value"


def judge(world: RunningWorld, records: Iterable[Mapping[str, Any]], *, reasons: bool) -> dict[str, Any]:
    """Count verdicts per value. ``records`` are dicts with ``listed_url`` and the five
    values; with ``reasons`` (the spider) unknowns are checked for a recorded reason."""
    by_url = {record.get("listed_url"): record for record in records}
    counts = {name: collections.Counter({v: 0 for v in VERDICTS}) for name in VALUES}
    by_preset: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    causes: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[dict[str, Any]]] = {"wrong": [], "unknown": []}
    missing = 0
    unknown_without_reason = 0
    for portal in world.portals:
        record = by_url.get(portal.listed_url)
        if record is None:
            missing += 1
        for name in VALUES:
            want = getattr(portal.truth, name)
            got = None if record is None else record.get(name)
            result = verdict(want, got)
            counts[name][result] += 1
            if result == "right":
                continue
            by_preset[portal.preset][f"{name} {result}"] += 1
            if result == "wrong":
                causes[f"{name}: {_cause(want, got)}"] += 1
            elif reasons and record is not None and not _has_reason(record, name):
                unknown_without_reason += 1
            if len(examples[result]) < EXAMPLES:
                examples[result].append(_example(portal, name, want, got, record))
    totals = {v: sum(counts[name][v] for name in VALUES) for v in VERDICTS}
    report: dict[str, Any] = {
        "portals": len(world.portals),
        "values": len(world.portals) * len(VALUES),
        "missing_records": missing,
        **totals,
        "per_value": {name: dict(counts[name]) for name in VALUES},
        "wrong_causes": dict(causes.most_common()),
        "not_right_by_preset": {preset: dict(c) for preset, c in sorted(by_preset.items())},
        "examples": examples,
    }
    if reasons:
        report["unknown_without_reason"] = unknown_without_reason
    return report


def _has_reason(record: Mapping[str, Any], name: str) -> bool:
    errors = record.get("errors") or {}
    return bool(record.get("failure")) or any(errors.get(key) for key in REASON_KEYS[name])


def _example(portal: WorldPortal, name: str, want: Any, got: Any, record: Mapping[str, Any] | None) -> dict[str, Any]:
    example = {"portal": portal.name, "preset": portal.preset, "value": name, "truth": want, "recorded": got}
    if record is not None and (record.get("failure") or record.get("errors")):
        example["failure"] = record.get("failure")
        example["errors"] = {key: (record.get("errors") or {}).get(key) for key in REASON_KEYS[name]
                             if (record.get("errors") or {}).get(key)}
    return example
