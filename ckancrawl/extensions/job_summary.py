"""JobSummary: what a crawl did, in its stats and its log, and a flag when too much failed.

When the spider closes (after the item pipelines have flushed), the extension reads the
crawl's stats and builds one summary:

- the job's units by outcome and the failed ones by reason: sites (``sites/status/*``,
  ``sites/failure/*``), repositories (``extensions/status/*``, ``extensions/failure/*``),
  harvested portals (``harvest/portals/complete|incomplete``);
- the GitHub budget used (requests per resource, GraphQL points, lowest remaining
  budget, answers from the ETag cache, waits for a reset);
- datasets harvested (``harvest/datasets``, deleted, filled gaps);
- storage (documents written to MongoDB, documents left in the spill file or refused);
- the catalog: datasets updated, unchanged and failed by reason (``catalog_sync/*``),
  and time series rows written and pending (``datastore/*``);
- the finish reason, the run time and the number of ERROR and WARNING log lines.

It is stored in the stats as ``job_summary`` (a dict) with ``job_summary/flagged`` and
``job_summary/failure_share`` beside it, and logged twice: a line for people
(``Job summary: ...``) and one JSON line (``Job summary (JSON): {...}``) that
``./scripts/schedule failures`` reads back from scrapyd's job logs.

The run is *flagged* when the share of failed units (or of failed catalog updates)
passes the threshold, when there was nothing to measure, when the catalog could not be
read, when documents did not reach MongoDB or time series rows the datastore, or when
the crawl did not finish normally (cancelled, closed early). A flagged run:

- logs ``Job flagged: <reasons>`` at ERROR level;
- ends ``scrapy crawl`` with JOB_SUMMARY_EXIT_CODE, through the project's ``crawl``
  command (ckancrawl/commands/crawl.py, enabled by ``COMMANDS_MODULE``): Scrapy 2.19 has
  no way for an extension to set the exit status itself;
- POSTs the summary as JSON to the webhook in the ``JOB_SUMMARY_WEBHOOK_URL``
  environment variable, if set. The body is ``{"text": <the line for people>,
  "summary": {...}}``: Slack and Mattermost incoming webhooks show the text as it is.
  The URL is read from the environment, never from settings (webhook URLs carry their
  secret in the path, and settings are printed); only its host is ever logged.

Settings (defaults in brackets):

- ``JOB_SUMMARY_ENABLED`` [True]
- ``JOB_SUMMARY_FAILURE_THRESHOLD`` [0.5]: the run is flagged when the failed share of
  its units is above this (0 flags any failure; 1 never flags on the share).
- ``JOB_SUMMARY_EXIT_CODE`` [3]: exit status of a flagged ``scrapy crawl`` (1 and 2 are
  Scrapy's own: start-up failure, usage error).
- ``JOB_SUMMARY_ALERT`` ["flagged"]: when to POST to the webhook: "flagged", "always"
  or "never".
- ``JOB_SUMMARY_WEBHOOK_TIMEOUT`` [10]: seconds per webhook attempt (two attempts).
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

logger = logging.getLogger(__name__)

#: What precedes the JSON summary in the log; ckancrawl.scrapyd.job_logs looks for it.
JSON_MARKER = "Job summary (JSON): "
WEBHOOK_ENV = "JOB_SUMMARY_WEBHOOK_URL"
ALERT_WHEN = ("flagged", "always", "never")


@dataclass(frozen=True)
class UnitKind:
    """The things a spider measures, as counted in its stats."""

    #: What one unit is called in the summary ("sites", "repositories", "portals").
    label: str
    #: Stats prefix of the outcome counts: ``<prefix><outcome>``.
    outcomes: str
    #: Outcomes that are failures.
    failed: tuple[str, ...]
    #: Stats prefix of the failures by reason kind, if the spider records them.
    reasons: str | None = None


#: The units of each spider, by spider name.
UNIT_KINDS: dict[str, UnitKind] = {
    "sites": UnitKind("sites", "sites/status/", ("failed",), "sites/failure/"),
    "extensions": UnitKind("repositories", "extensions/status/", ("failed",), "extensions/failure/"),
    "harvest": UnitKind("portals", "harvest/portals/", ("incomplete",)),
}


def _prefixed(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    """Counts under ``prefix`` whose rest is one name (``sites/status/ok`` -> ``ok``)."""
    found = {}
    for key, value in stats.items():
        if key.startswith(prefix) and "/" not in key[len(prefix):] and isinstance(value, (int, float)):
            found[key[len(prefix):]] = int(value)
    return dict(sorted(found.items()))


def _units(stats: Mapping[str, Any], kind: UnitKind) -> dict[str, Any]:
    by_outcome = _prefixed(stats, kind.outcomes)
    total = sum(by_outcome.values())
    failed = sum(by_outcome.get(outcome, 0) for outcome in kind.failed)
    units: dict[str, Any] = {"total": total, "by_outcome": by_outcome, "failed": failed}
    if kind.reasons:
        units["failed_by_reason"] = dict(sorted(_prefixed(stats, kind.reasons).items(), key=lambda kv: (-kv[1], kv[0])))
    units["failure_share"] = round(failed / total, 4) if total else None
    return units


def _github(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(key.startswith("github/") for key in stats):
        return None
    remaining = {
        key.split("/")[2]: value
        for key, value in stats.items()
        if key.startswith("github/budget/") and key.endswith("/remaining")
    }
    return {
        "requests": _prefixed(stats, "github/requests/"),
        "graphql_points": int(stats.get("extensions/graphql/cost", 0)),
        "not_modified": int(stats.get("github/not_modified", 0)),
        "lowest_remaining": dict(sorted(remaining.items())),
        "rate_limit_waits": int(stats.get("github/rate_limit/waits", 0)),
        "rate_limit_waited_seconds": int(stats.get("github/rate_limit/waited_seconds", 0)),
        "secondary_limit_pauses": int(stats.get("github/secondary_limit/pauses", 0)),
        "tokens_refused": int(stats.get("github/tokens/refused", 0)),
    }


def _harvest(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(key.startswith("harvest/") for key in stats):
        return None
    return {
        "datasets": int(stats.get("harvest/datasets", 0)),
        "datasets_by_package_show": int(stats.get("harvest/datasets/package_show", 0)),
        "deleted": int(stats.get("harvest/deleted", 0)),
        "gaps_filled": int(stats.get("harvest/gaps_filled", 0)),
        "vanished": int(stats.get("harvest/vanished", 0)),
        "id_ranges": int(stats.get("harvest/ranges_done", 0)),
    }


def _storage(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(key.startswith("mongodb/") for key in stats):
        return None
    return {
        "items": int(stats.get("mongodb/items", 0)),
        "documents_written": int(stats.get("mongodb/documents_written", 0)),
        "retries": int(stats.get("mongodb/retries", 0)),
        "left_in_spill": int(stats.get("mongodb/left_in_spill", 0)),
        "rejected": int(stats.get("mongodb/rejected", 0)),
        "lost": int(stats.get("mongodb/lost", 0)),
    }


def _catalog(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(key.startswith("catalog_sync/") for key in stats):
        return None
    items = int(stats.get("catalog_sync/items", 0))
    failed = int(stats.get("catalog_sync/failed", 0))
    return {
        "datasets": items,
        "updated": int(stats.get("catalog_sync/updated", 0)),
        "unchanged": int(stats.get("catalog_sync/unchanged", 0)),
        "would_update": int(stats.get("catalog_sync/would_update", 0)),
        "failed": failed,
        "failed_by_reason": _prefixed(stats, "catalog_sync/failed/"),
        "not_restored": int(stats.get("catalog_sync/not_restored", 0)),
        "failure_share": round(failed / items, 4) if items else None,
    }


def _series(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    if not any(key.startswith("datastore/") for key in stats):
        return None
    return {
        "rows": int(stats.get("datastore/rows", 0)),
        "rows_written": int(stats.get("datastore/rows_written", 0)),
        "rows_pending": int(stats.get("datastore/rows_pending", 0)),
        "table_problems": int(stats.get("datastore/table_problems", 0)),
    }


def summarize(
    stats: Mapping[str, Any],
    spider: str,
    reason: str,
    threshold: float,
    job: str | None = None,
) -> dict[str, Any]:
    """The summary of a closed crawl from its final stats (see the module docstring)."""
    summary: dict[str, Any] = {"spider": spider, "job": job, "finish_reason": reason}
    elapsed = stats.get("elapsed_time_seconds")
    summary["elapsed_seconds"] = round(float(elapsed), 1) if isinstance(elapsed, (int, float)) else None
    flags: list[str] = []
    shares = []
    kind = UNIT_KINDS.get(spider)
    if kind is not None:
        units = summary[kind.label] = _units(stats, kind)
        if units["total"] == 0 and "distributed/run" not in stats:
            # In a distributed run a process may rightly end with none: the others took
            # them all, or it did only id ranges of a portal another process concluded.
            flags.append(f"no {kind.label} were measured")
        elif units["total"] and units["failure_share"] > threshold:
            reasons = ", ".join(f"{k} {v}" for k, v in units.get("failed_by_reason", {}).items())
            flags.append(
                f"{units['failed']} of {units['total']} {kind.label} failed "
                f"({units['failure_share']:.0%} > {threshold:.0%})" + (f": {reasons}" if reasons else "")
            )
        shares.append(units["failure_share"] or 0.0)
    sections = (("github", _github), ("harvest", _harvest), ("storage", _storage), ("catalog", _catalog),
                ("series", _series))
    for section, build in sections:
        if (value := build(stats)) is not None:
            summary[section] = value
    storage = summary.get("storage")
    if storage and (storage["left_in_spill"] or storage["rejected"] or storage["lost"]):
        flags.append(
            f"{storage['left_in_spill'] + storage['rejected'] + storage['lost']} documents did not reach MongoDB "
            f"(left in the spill file {storage['left_in_spill']}, refused {storage['rejected']}"
            + (f", lost {storage['lost']}: run the crawl again" if storage["lost"] else "") + ")"
        )
    catalog = summary.get("catalog")
    if catalog and catalog["failure_share"] and catalog["failure_share"] > threshold:
        reasons = ", ".join(f"{k} {v}" for k, v in catalog["failed_by_reason"].items())
        flags.append(
            f"{catalog['failed']} of {catalog['datasets']} catalog datasets could not be updated "
            f"({catalog['failure_share']:.0%} > {threshold:.0%})" + (f": {reasons}" if reasons else "")
        )
    series = summary.get("series")
    if series and series["table_problems"]:
        flags.append("the time series table is unusable: nothing was written to it (see the log)")
    if series and series["rows_pending"]:
        flags.append(f"{series['rows_pending']} time series rows were not written and wait for the next run")
    catalog_error = stats.get(f"{spider}/catalog/error")
    if catalog_error:
        flags.append(f"the catalog could not be read: {catalog_error}")
    if reason != "finished":
        flags.append(f"the crawl did not finish normally (finish reason: {reason})")
    summary["log"] = {
        "errors": int(stats.get("log_count/ERROR", 0)),
        "warnings": int(stats.get("log_count/WARNING", 0)),
    }
    summary["failure_share"] = max(shares) if shares else None
    summary["threshold"] = threshold
    summary["flagged"] = bool(flags)
    summary["flags"] = flags
    return summary


def describe(summary: Mapping[str, Any]) -> str:
    """The summary in one line for people."""
    parts = [f"{summary['spider']}" + (f" job {summary['job']}" if summary.get("job") else "")]
    for kind in UNIT_KINDS.values():
        units = summary.get(kind.label)
        if not units:
            continue
        outcomes = ", ".join(f"{k} {v}" for k, v in units["by_outcome"].items()) or "none"
        text = f"{kind.label} {units['total']} ({outcomes})"
        if units.get("failed_by_reason"):
            text += "; failed by reason: " + ", ".join(f"{k} {v}" for k, v in units["failed_by_reason"].items())
        parts.append(text)
    if harvest := summary.get("harvest"):
        parts.append(f"datasets harvested {harvest['datasets']}, deleted {harvest['deleted']}")
    if github := summary.get("github"):
        requests = ", ".join(f"{k} {v}" for k, v in github["requests"].items()) or "none"
        remaining = ", ".join(f"{k} {v}" for k, v in github["lowest_remaining"].items()) or "unknown"
        parts.append(
            f"GitHub requests {requests}, GraphQL points {github['graphql_points']}, "
            f"lowest remaining {remaining}"
        )
    if storage := summary.get("storage"):
        parts.append(f"MongoDB documents written {storage['documents_written']}")
    if catalog := summary.get("catalog"):
        parts.append(
            f"catalog datasets updated {catalog['updated']}, unchanged {catalog['unchanged']}, failed {catalog['failed']}"
        )
    if series := summary.get("series"):
        parts.append(f"time series rows written {series['rows_written']}, pending {series['rows_pending']}")
    parts.append(f"finish reason {summary['finish_reason']}")
    verdict = "FLAGGED: " + "; ".join(summary["flags"]) if summary["flagged"] else "ok"
    return " | ".join(parts) + f" | {verdict}"


def post_json(url: str, payload: Mapping[str, Any], timeout: float, attempts: int = 2) -> int:
    """POST ``payload`` as JSON; the HTTP status, or raises OSError after ``attempts``."""
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(1.0)
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "ckancrawl-job-summary"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked
                return response.status
        except urllib.error.HTTPError as exc:
            last = exc
            if exc.code < 500 and exc.code != 429:
                break
        except (OSError, ValueError) as exc:
            last = exc
    raise OSError(_without_url(last))


def _without_url(exc: Exception | None) -> str:
    """An error message that cannot leak the webhook's secret path."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}" if exc.reason else "URLError"
    return type(exc).__name__ if exc else "unknown error"


class JobSummary:
    """Summarise the crawl at close (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("JOB_SUMMARY_ENABLED", True):
            raise NotConfigured
        self.crawler = crawler
        self.threshold = settings.getfloat("JOB_SUMMARY_FAILURE_THRESHOLD", 0.5)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"JOB_SUMMARY_FAILURE_THRESHOLD={self.threshold} must be a share between 0 and 1")
        self.flag_exit_code = settings.getint("JOB_SUMMARY_EXIT_CODE", 3)
        self.alert_when = settings.get("JOB_SUMMARY_ALERT", "flagged")
        if self.alert_when not in ALERT_WHEN:
            raise ValueError(f"JOB_SUMMARY_ALERT={self.alert_when!r}: use one of {', '.join(ALERT_WHEN)}")
        self.webhook_timeout = settings.getfloat("JOB_SUMMARY_WEBHOOK_TIMEOUT", 10.0)
        self.webhook_url = os.environ.get(WEBHOOK_ENV) or None
        if self.webhook_url and urlsplit(self.webhook_url).scheme not in ("http", "https"):
            raise ValueError(f"{WEBHOOK_ENV} must be an http(s) URL")
        self.summary: dict[str, Any] | None = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> JobSummary:
        return cls(crawler)

    @property
    def flagged(self) -> bool:
        return bool(self.summary and self.summary["flagged"])

    @property
    def exit_code(self) -> int:
        """What ``scrapy crawl`` should exit with: 0, or JOB_SUMMARY_EXIT_CODE if flagged."""
        return self.flag_exit_code if self.flagged else 0

    def spider_closed(self, spider: Any, reason: str) -> Deferred | None:
        stats = self.crawler.stats
        self.summary = summarize(
            stats.get_stats(), spider.name, reason, self.threshold, job=getattr(spider, "_job", None)
        )
        stats.set_value("job_summary", self.summary)
        stats.set_value("job_summary/flagged", self.summary["flagged"])
        stats.set_value("job_summary/failure_share", self.summary["failure_share"])
        text = describe(self.summary)
        logger.info("Job summary: %s", text)
        logger.info("%s%s", JSON_MARKER, json.dumps(self.summary, sort_keys=True, default=str))
        if self.summary["flagged"]:
            logger.error("Job flagged: %s", "; ".join(self.summary["flags"]))
        if self.webhook_url and (self.alert_when == "always" or (self.alert_when == "flagged" and self.flagged)):
            return self._alert(text)
        return None

    def _alert(self, text: str) -> Deferred:
        host = urlsplit(self.webhook_url).netloc.rsplit("@", 1)[-1]
        payload = {"text": text, "summary": self.summary}
        stats = self.crawler.stats

        def sent(status: int) -> None:
            stats.set_value("job_summary/alert", f"sent (HTTP {status})")
            logger.info("Job summary sent to the webhook at %s (HTTP %s)", host, status)

        def failed(failure: Any) -> None:
            stats.set_value("job_summary/alert", f"failed: {failure.value}")
            logger.error("Job summary could not be sent to the webhook at %s: %s", host, failure.value)

        d = deferToThread(post_json, self.webhook_url, payload, self.webhook_timeout)
        d.addCallbacks(sent, failed)
        return d
