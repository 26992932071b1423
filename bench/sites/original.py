"""The original sites profiler, re-implemented for the benchmark.

What ckancrawl's ``sites`` spider replaces: the ``2CKANActionAPI.py`` stage of the
catalog's weekly pipeline (see ../shared/DESIGN.md, "What the current pipelines do"),
in the form it had when it used ``requests`` (autumn 2025). Reproduced as it behaves,
including what it gets wrong:

- a ``ThreadPoolExecutor`` of 10 workers, one site per task, every task submitted at
  once, results collected with ``as_completed``;
- one shared ``requests.Session`` (``verify=False``), an ``HTTPAdapter`` with
  ``pool_connections=10, pool_maxsize=20`` and a urllib3 ``Retry(total=2,
  backoff_factor=0.3, status_forcelist=[429, 500, 502, 503, 504], allowed_methods=["GET"])``.
  0.3 is the factor of the original's code; urllib3 2 waits nothing before the first
  retry, ``0.3 * 2 = 0.6 s`` before the second, and honours ``Retry-After`` on 429/503.
  ``total=2`` also retries read timeouts and connection errors (urllib3's default);
- a 15 s timeout per request (connect and read);
- per site, one after the other: ``package_list``, ``group_list``,
  ``organization_list``, ``status_show`` at ``<listed URL without trailing />/api/3/action/``
  (no discovery: a ``/dataset`` page, ``/api/action/``-only installs or a redirect to a
  sub-path are not found);
- ``num_datasets`` = len(package_list), ``num_groups`` = len(group_list),
  ``num_organizations`` = len(organization_list), so counts stop at CKAN's 1000-name cap;
- any failed call (exception, HTTP error after retries, ``success: false``, not JSON)
  leaves its value at "0" (counts) or "" (version, extensions);
- ``extensions`` is ``json.dumps`` of whatever status_show sent;
- the output is ``ckan_stats.csv``: ``tstamp``, the input columns, ``num_datasets``,
  ``num_groups``, ``num_organizations``, ``ckan_version``, ``extensions``.

Run: ``python -m bench.sites.original site_urls.csv ckan_stats.csv [--hosts-file F]``.
The input is a CSV with a ``url`` column. ``--hosts-file`` gives this process the
simulated world's name resolution (``*.test`` names, see tests/world/resolver.py) by
wrapping ``socket.getaddrinfo``; that changes how names resolve, nothing else. Log lines
carry the epoch time (``%(created)``) so the benchmark can tell when each site finished.
"""
from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import logging
import socket
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

MAX_WORKERS = 10
REQUEST_TIMEOUT = 15
RETRY_ATTEMPTS = 2
BACKOFF_FACTOR = 0.3
RETRY_STATUSES = [429, 500, 502, 503, 504]
STATS_COLUMNS = ["num_datasets", "num_groups", "num_organizations", "ckan_version", "extensions"]

log = logging.getLogger("original")


class Profiler:
    """One shared session; ``profile(url)`` gives the original's stats for a site."""

    def __init__(self, workers: int = MAX_WORKERS, timeout: float = REQUEST_TIMEOUT,
                 retries: int = RETRY_ATTEMPTS, backoff_factor: float = BACKOFF_FACTOR) -> None:
        self.workers = workers
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "CKAN-Stats-Extractor/2.0"
        self.session.verify = False
        adapter = HTTPAdapter(
            max_retries=Retry(total=retries, backoff_factor=backoff_factor,
                              status_forcelist=RETRY_STATUSES, allowed_methods=["GET"]),
            pool_connections=workers,
            pool_maxsize=workers * 2,
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @staticmethod
    def base_url(url: str) -> str:
        url = url.strip()
        if url and not url.startswith(("http://", "https://")):
            url = "https://" + url
        return url.rstrip("/")

    def call(self, base: str, action: str) -> dict[str, Any] | None:
        """The envelope of a successful call; None for any failure, whatever it was."""
        try:
            answer = self.session.get(urljoin(base + "/", f"api/3/action/{action}"), timeout=self.timeout)
            answer.raise_for_status()
            envelope = answer.json()
            if envelope.get("success", False):
                return envelope
        except Exception:  # the original swallowed every failure
            pass
        return None

    @staticmethod
    def empty_stats() -> dict[str, str]:
        return {"num_datasets": "0", "num_groups": "0", "num_organizations": "0",
                "ckan_version": "", "extensions": "", "tstamp": today()}

    def profile(self, url: str) -> dict[str, str]:
        base = self.base_url(url)
        stats = self.empty_stats()
        if not base:
            return stats
        for action, column in (("package_list", "num_datasets"), ("group_list", "num_groups"),
                               ("organization_list", "num_organizations")):
            envelope = self.call(base, action)
            if envelope and isinstance(envelope.get("result"), list):
                stats[column] = str(len(envelope["result"]))
        envelope = self.call(base, "status_show")
        if envelope and isinstance(envelope.get("result"), dict):
            result = envelope["result"]
            stats["ckan_version"] = result.get("ckan_version", "")
            extensions = result.get("extensions", [])
            if extensions:
                stats["extensions"] = json.dumps(extensions)
        stats["tstamp"] = today()
        return stats

    def process_row(self, row: dict[str, str], index: int, total: int) -> dict[str, str]:
        url = (row.get("url") or "").strip()
        out = dict(row)
        if not url:
            log.warning("[%d/%d] Empty URL, skipping", index, total)
            out.update(self.empty_stats())
            return out
        try:
            stats = self.profile(url)
        except Exception as error:
            log.error("[%d/%d] Failed: %s - %s", index, total, url, error)
            stats = self.empty_stats()
        out.update(stats)
        log.info("[%d/%d] %-50s | D:%4s G:%3s O:%3s V:%s", index, total, url[:50], stats["num_datasets"],
                 stats["num_groups"], stats["num_organizations"], stats["ckan_version"])
        return out

    def process_csv(self, source: Path, target: Path) -> list[dict[str, str]]:
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "url" not in reader.fieldnames:
                raise ValueError(f"{source}: a CSV with a 'url' column is needed")
            columns = list(reader.fieldnames)
            rows = list(reader)
        fieldnames = ["tstamp"] + [c for c in columns if c != "tstamp"]
        fieldnames += [c for c in STATS_COLUMNS if c not in fieldnames]
        log.info("Processing %d rows with %d workers...", len(rows), self.workers)
        done: list[dict[str, str] | None] = [None] * len(rows)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self.process_row, row, i + 1, len(rows)): i for i, row in enumerate(rows)}
            for future in as_completed(futures):
                index = futures[future]
                try:
                    done[index] = future.result()
                except Exception as error:
                    log.error("Task failed for row %d: %s", index + 1, error)
                    done[index] = {**rows[index], **self.empty_stats()}
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(done)
        log.info("Wrote %d rows to %s", len(done), target)
        return [row for row in done if row is not None]


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


# -- the simulated world's names (not part of the original) ----------------------------


def world_getaddrinfo(hosts_file: Path, real: Callable[..., Any] = socket.getaddrinfo) -> Callable[..., Any]:
    """A ``socket.getaddrinfo`` that resolves names the way tests/world/resolver.py does:
    IP literals and localhost as themselves, ``*.test`` from the hosts file, every other
    name not at all (no DNS query leaves the machine)."""
    hosts = {name.strip().rstrip(".").lower(): address
             for name, address in json.loads(hosts_file.read_text(encoding="utf-8")).items()}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        try:
            ipaddress.ip_address(name)
            return real(host, port, *args, **kwargs)
        except ValueError:
            pass
        normal = name.strip().rstrip(".").lower()
        address = "127.0.0.1" if normal == "localhost" else hosts.get(normal) if normal.endswith(".test") else None
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not a name of the simulated world")
        return real(address, port, *args, **kwargs)

    return getaddrinfo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The original threaded CKAN sites profiler.")
    parser.add_argument("input", type=Path, help="site_urls.csv (a 'url' column)")
    parser.add_argument("output", type=Path, help="ckan_stats.csv to write")
    parser.add_argument("--hosts-file", type=Path, help="the simulated world's hosts.json")
    parser.add_argument("--workers", type=int, default=MAX_WORKERS)
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT)
    parser.add_argument("--backoff-factor", type=float, default=BACKOFF_FACTOR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(created).3f - %(levelname)s - %(message)s")
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if args.hosts_file:
        socket.getaddrinfo = world_getaddrinfo(args.hosts_file)
    profiler = Profiler(workers=args.workers, timeout=args.timeout, backoff_factor=args.backoff_factor)
    profiler.process_csv(args.input, args.output)


if __name__ == "__main__":
    main()
