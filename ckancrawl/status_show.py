"""Reading ``status_show``, whose shape changed across CKAN versions."""
from __future__ import annotations

import re
from typing import Any

_SEPARATORS = re.compile(r"[\s,;]+")


def normalize_extensions(value: Any) -> list[str] | None:
    """Sorted, unique plugin names whatever the shape; None when unknown.

    Seen shapes: a list of names (most versions), a list of {"name": ...}, a dict of
    name -> version or details, a space- or comma-separated string, absent or null.
    """
    if value is None:
        return None
    names: list[str] = []
    if isinstance(value, str):
        names = _SEPARATORS.split(value)
    elif isinstance(value, dict):
        names = [str(key) for key in value]
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, str):
                names += _SEPARATORS.split(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
    else:
        return None
    return sorted({name.strip() for name in names if name and name.strip()})


def text_field(status: dict[str, Any], key: str) -> str | None:
    value = status.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None
