"""A finished job's outcome, read back from its log.

scrapyd 1.6 does not keep a job's exit status (listjobs.json only says "finished"), so
the outcome comes from the log scrapyd serves at the job's ``log_url``: the JSON line
of the JobSummary extension (ckancrawl/extensions/job_summary.py). A log without that
line belongs to a job that was killed or crashed before it closed, or that ran
without the extension.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ckancrawl.extensions.job_summary import JSON_MARKER

OK = "ok"
FLAGGED = "flagged"
NO_SUMMARY = "no summary"
NO_LOG = "no log"

_CLOSED = re.compile(r"Spider closed \(([^)]*)\)")
_PROBLEM = re.compile(r"\] (ERROR|CRITICAL): (.*)$")


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    spider: str
    verdict: str
    detail: str
    summary: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.verdict != OK


def read_summary(log: str) -> dict[str, Any] | None:
    """The last JobSummary JSON line of a log, parsed; None if there is none."""
    for line in reversed(log.splitlines()):
        at = line.find(JSON_MARKER)
        if at >= 0:
            try:
                summary = json.loads(line[at + len(JSON_MARKER):])
            except ValueError:
                continue
            if isinstance(summary, dict):
                return summary
    return None


def outcome(job_id: str, spider: str, log: str | None) -> JobOutcome:
    if log is None:
        return JobOutcome(job_id, spider, NO_LOG, "scrapyd has no log for this job (removed by jobs_to_keep?)")
    summary = read_summary(log)
    if summary is not None:
        if summary.get("flagged"):
            return JobOutcome(job_id, spider, FLAGGED, "; ".join(summary.get("flags") or []), summary)
        return JobOutcome(job_id, spider, OK, "", summary)
    closed = _CLOSED.findall(log)
    problems = [m.group(2) for line in log.splitlines() if (m := _PROBLEM.search(line))]
    last_problem = f"; last error: {problems[-1][:300]}" if problems else ""
    if closed:
        detail = f"closed ({closed[-1]}) without a job summary (is the JobSummary extension enabled?)"
    else:
        detail = "the job ended before it could close: killed or crashed"
    return JobOutcome(job_id, spider, NO_SUMMARY, detail + last_problem)
