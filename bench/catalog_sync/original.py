"""The original pipeline's catalog update, re-implemented for the benchmark.

DESIGN.md (sites, step 4): "package_patch of num_datasets, num_groups,
num_organizations (and what else was measured) on the site's catalog dataset": one
``package_patch`` per dataset with every measured field, whether or not it changed, no
read before and no check after, through ckanapi. ``threads`` > 1 runs the same calls
from a thread pool (the original's profiler used 10 threads; its update step is given
both ways so the comparison does not hinge on concurrency).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ckanapi import RemoteCKAN


def update_all(url: str, api_key: str, measured: dict[str, dict[str, Any]], threads: int = 1) -> int:
    """package_patch every dataset with its measured values; return the calls made."""
    local = threading.local()

    def patch(item: tuple[str, dict[str, Any]]) -> None:
        if not hasattr(local, "ckan"):
            local.ckan = RemoteCKAN(url, apikey=api_key)
        name, values = item
        local.ckan.action.package_patch(id=name, **values)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(patch, measured.items()))
    return len(measured)
