"""A small client of scrapyd 1.6's JSON API.

scrapyd answers its errors with HTTP 200 and ``{"status": "error", "message": ...}``
(unknown project or spider, missing parameter, a bad egg...). Every call here checks the
body: such an answer raises :class:`ScrapydError` with scrapyd's message. With HTTP
Basic auth on (scrapyd's ``username``/``password``, or SCRAPYD_USERNAME and
SCRAPYD_PASSWORD in scrapyd's environment) a missing or wrong password is a 401 and
raises :class:`ScrapydUnauthorized`; a scrapyd that does not answer raises
:class:`ScrapydUnavailable`.

Jobs are scheduled from a checked :class:`~ckancrawl.scrapyd.jobs.JobRequest`; job ids
given to ``status`` and ``cancel`` are checked the same way.

Where the client finds scrapyd (:meth:`ScrapydClient.from_env`): SCRAPYD_URL, else the
``[deploy]`` url of the project's scrapy.cfg, else http://127.0.0.1:6800/; the
credentials come from SCRAPYD_USERNAME and SCRAPYD_PASSWORD, and never from the URL.
"""
from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ckancrawl.scrapyd.jobs import JobRequest, check_job_id, check_name

DEFAULT_URL = "http://127.0.0.1:6800/"
DEFAULT_PROJECT = "ckancrawl"


class ScrapydError(Exception):
    """scrapyd refused a request, or answered something that is not its JSON."""


class ScrapydUnauthorized(ScrapydError):
    """HTTP 401: scrapyd's Basic auth refused the credentials (or none were given)."""


class ScrapydUnavailable(ScrapydError):
    """scrapyd did not answer (not running, wrong URL, timeout)."""


@dataclass(frozen=True)
class Job:
    """One job as listjobs.json describes it."""

    id: str
    spider: str
    state: str
    project: str = DEFAULT_PROJECT
    start_time: str | None = None
    end_time: str | None = None
    pid: int | None = None
    log_url: str | None = None
    items_url: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    version: str | None = None


@dataclass(frozen=True)
class JobList:
    pending: list[Job]
    running: list[Job]
    finished: list[Job]

    def all(self) -> list[Job]:
        return [*self.pending, *self.running, *self.finished]

    def find(self, job_id: str) -> Job | None:
        return next((job for job in self.all() if job.id == job_id), None)


def deploy_url_from_scrapy_cfg(start: Path | None = None) -> str | None:
    """The ``[deploy]`` url of the closest scrapy.cfg, if any."""
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        cfg = candidate / "scrapy.cfg"
        if cfg.is_file():
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(cfg, encoding="utf-8")
            return parser.get("deploy", "url", fallback=None)
    return None


class ScrapydClient:
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        project: str = DEFAULT_PROJECT,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"scrapyd URL {url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError(
                "put scrapyd's credentials in SCRAPYD_USERNAME and SCRAPYD_PASSWORD, not in the URL"
            )
        self.url = url if url.endswith("/") else url + "/"
        self.project = check_name("project", project)
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "ckancrawl-scrapyd-client"
        if username or password:
            self._session.auth = (username or "", password or "")
        self.has_credentials = bool(username or password)

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        project: str | None = None,
        environ: Mapping[str, str] = os.environ,
        timeout: float = 30.0,
    ) -> ScrapydClient:
        return cls(
            url or environ.get("SCRAPYD_URL") or deploy_url_from_scrapy_cfg() or DEFAULT_URL,
            username=environ.get("SCRAPYD_USERNAME") or None,
            password=environ.get("SCRAPYD_PASSWORD") or None,
            project=project or environ.get("SCRAPYD_PROJECT") or DEFAULT_PROJECT,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        auth = "with credentials" if self.has_credentials else "without credentials"
        return f"ScrapydClient({self.url!r}, project={self.project!r}, {auth})"

    def close(self) -> None:
        self._session.close()

    # -- the calls ---------------------------------------------------------------------------

    def daemon_status(self) -> dict[str, Any]:
        return self._call("GET", "daemonstatus.json")

    def list_projects(self) -> list[str]:
        return self._call("GET", "listprojects.json")["projects"]

    def list_versions(self) -> list[str]:
        return self._call("GET", "listversions.json", params={"project": self.project})["versions"]

    def list_spiders(self, version: str | None = None) -> list[str]:
        params = {"project": self.project}
        if version:
            params["_version"] = version
        return self._call("GET", "listspiders.json", params=params)["spiders"]

    def add_version(self, version: str, egg: bytes) -> int:
        """Upload an egg; the number of spiders scrapyd found in it."""
        answer = self._call(
            "POST",
            "addversion.json",
            data={"project": self.project, "version": version},
            files={"egg": ("project.egg", egg)},
        )
        return int(answer["spiders"])

    def schedule(self, job: JobRequest) -> str:
        """Schedule a checked job; the job id scrapyd will use."""
        if job.project != self.project:
            raise ValueError(f"this client schedules jobs of {self.project!r}, not {job.project!r}")
        answer = self._call("POST", "schedule.json", data=job.form())
        job_id = answer.get("jobid")
        if not isinstance(job_id, str):
            raise ScrapydError(f"schedule.json answered without a job id: {answer}")
        return job_id

    def list_jobs(self) -> JobList:
        answer = self._call("GET", "listjobs.json", params={"project": self.project})
        return JobList(
            pending=[self._job(raw, "pending") for raw in answer.get("pending", [])],
            running=[self._job(raw, "running") for raw in answer.get("running", [])],
            finished=[self._job(raw, "finished") for raw in answer.get("finished", [])],
        )

    def status(self, job_id: str) -> str | None:
        """"pending", "running", "finished", or None when scrapyd does not know the job."""
        answer = self._call("GET", "status.json", params={"job": check_job_id(job_id), "project": self.project})
        return answer.get("currstate")

    def cancel(self, job_id: str, signal: str | None = None) -> str | None:
        """Cancel a job: the state it was in ("pending", "running"), or None if unknown."""
        data = {"project": self.project, "job": check_job_id(job_id)}
        if signal:
            data["signal"] = signal
        return self._call("POST", "cancel.json", data=data).get("prevstate")

    def job_log(self, job: Job, tail: int | None = 256 * 1024) -> str | None:
        """The job's log (its last ``tail`` bytes), or None if scrapyd has no log for it."""
        if not job.log_url:
            return None
        url = urljoin(self.url, job.log_url.lstrip("/"))
        headers = {}
        if tail:
            # Twisted's static files answer a suffix range longer than the file with a
            # 500 (a negative seek): ask for the size first, then an explicit range.
            head = self._request("HEAD", url, "log")
            if head.status_code == 404:
                return None
            size = int(head.headers.get("Content-Length") or 0)
            if size > tail:
                headers["Range"] = f"bytes={size - tail}-"
        response = self._request("GET", url, "log", headers=headers)
        if response.status_code in (404, 416):
            return None
        if response.status_code not in (200, 206):
            raise ScrapydError(f"the log of job {job.id} could not be read: HTTP {response.status_code}")
        return response.content.decode("utf-8", errors="replace")

    # -- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _job(raw: Mapping[str, Any], state: str) -> Job:
        return Job(
            id=str(raw.get("id")),
            spider=str(raw.get("spider")),
            state=state,
            project=str(raw.get("project", DEFAULT_PROJECT)),
            start_time=raw.get("start_time"),
            end_time=raw.get("end_time"),
            pid=raw.get("pid"),
            log_url=raw.get("log_url"),
            items_url=raw.get("items_url"),
            args=dict(raw.get("args") or {}),
            settings=dict(raw.get("settings") or {}),
            version=raw.get("version"),
        )

    def _request(self, method: str, url: str, endpoint: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise ScrapydUnavailable(f"scrapyd at {self.url} did not answer {endpoint} within {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise ScrapydUnavailable(
                f"scrapyd at {self.url} could not be reached ({_reason(exc)}); is it running, and is "
                "SCRAPYD_URL (or the [deploy] url of scrapy.cfg) right?"
            ) from None
        if response.status_code == 401:
            if self.has_credentials:
                raise ScrapydUnauthorized(f"scrapyd at {self.url} refused the credentials in SCRAPYD_USERNAME/SCRAPYD_PASSWORD")
            raise ScrapydUnauthorized(
                f"scrapyd at {self.url} requires a login: set SCRAPYD_USERNAME and SCRAPYD_PASSWORD"
            )
        return response

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, urljoin(self.url, endpoint), endpoint, **kwargs)
        try:
            answer = response.json()
        except ValueError:
            raise ScrapydError(
                f"{endpoint}: HTTP {response.status_code} and not JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise ScrapydError(f"{endpoint}: unexpected answer {answer!r:.200}")
        if answer.get("status") == "error":
            raise ScrapydError(f"{endpoint}: {answer.get('message') or 'scrapyd reported an error without a message'}")
        if answer.get("status") != "ok" or response.status_code != 200:
            raise ScrapydError(f"{endpoint}: HTTP {response.status_code}, status {answer.get('status')!r}")
        return answer


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if known in text:
            return known.lower()
    return type(exc).__name__
