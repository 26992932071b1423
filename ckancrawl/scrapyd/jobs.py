"""What may be sent to scrapyd, checked before it is sent.

scrapyd 1.6 trusts what it is given. A job id becomes a file name under ``logs_dir``
(and ``items_dir``, ``jobs_dir``): an id with ``../`` is accepted by schedule.json and
then fails when the job is launched, which leaves that process slot dead until scrapyd
restarts. A spider argument or setting is passed on as ``-a name=value`` /
``-s NAME=value`` and is visible in listjobs.json, in scrapyd's log and in the process
list. And a spider that rejects its arguments fails only when the job starts, with the
reason buried in the job's log. So :func:`job_request` checks everything first and says
what is wrong.

Spider arguments are checked against :data:`SPIDER_ARGUMENTS`, one entry per spider of
the project (tests/test_scrapyd_jobs.py checks that every spider has one).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

#: Job ids: letters, digits, ``_`` and ``-`` (scrapyd's own are 32 hex digits).
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
#: Project and spider names: Python-identifier-like, as Scrapy's.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
ARGUMENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
#: Parameters of schedule.json itself, and the argument scrapyd adds (``_job``).
RESERVED = {"project", "spider", "setting", "jobid", "priority", "_version", "_job"}
#: Setting names that hold secrets: these come from the environment of scrapyd.
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|WEBHOOK|_URI$|_DSN$)")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_VALUE = 4096


class InvalidJob(ValueError):
    """A job id, name, argument or setting that must not be sent to scrapyd."""


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise InvalidJob(
            f"job id {job_id!r} is not allowed: use 1-128 letters, digits, '_' or '-', starting with a "
            "letter or digit (scrapyd makes it a file name; '../' or '/' would break a process slot)"
        )
    return job_id


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidJob(f"{kind} name {name!r} is not allowed: use letters, digits and '_', starting with a letter")
    return name


# -- argument values -------------------------------------------------------------------


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("carries credentials; spider arguments are visible in listjobs.json")
    return value


def absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path on the scrapyd host (jobs run in scrapyd's directory)")
    if "/../" in value + "/":
        raise ValueError("must not contain '..'")
    return value


def timestamp(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not an ISO 8601 timestamp (e.g. 2025-01-05T02:00:00Z)") from None
    return value


def since(value: str) -> str:
    return value if value == "all" else timestamp(value)


def repository(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return http_url(value)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
        raise ValueError("is neither a repository URL nor owner/name")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return check


@dataclass(frozen=True)
class SpiderArguments:
    """The arguments a spider accepts: name -> checker; at most one of each exclusive group."""

    accepted: Mapping[str, Callable[[str], str]]
    exclusive: tuple[tuple[str, ...], ...] = ()
    #: At least one of these must be given.
    required_one_of: tuple[str, ...] = ()
    #: Any other rule over the checked arguments: returns what is wrong, or None.
    combination: Callable[[Mapping[str, str]], str | None] | None = None


#: Arguments of each spider, as their docstrings (ckancrawl/spiders/) describe them.
SPIDER_ARGUMENTS: dict[str, SpiderArguments] = {
    "sites": SpiderArguments(
        {"catalog": http_url, "urls": absolute_path, "url": http_url, "run_timestamp": timestamp},
        exclusive=(("catalog", "urls", "url"),),
    ),
    "extensions": SpiderArguments(
        {"catalog": http_url, "repos": absolute_path, "repo": repository, "run_timestamp": timestamp},
        exclusive=(("catalog", "repos", "repo"),),
    ),
    "harvest": SpiderArguments(
        {
            "portal": http_url,
            "portals": absolute_path,
            "method": one_of("search", "show"),
            "since": since,
            "run_timestamp": timestamp,
        },
        exclusive=(("portal", "portals"),),
        required_one_of=("portal", "portals"),
        combination=lambda args: (
            "method=show always fetches every dataset: since= does not apply to it"
            if args.get("method") == "show" and args.get("since", "all") != "all"
            else None
        ),
    ),
}


@dataclass(frozen=True)
class JobRequest:
    """One checked schedule.json request."""

    project: str
    spider: str
    args: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None
    priority: float = 0.0
    version: str | None = None

    def form(self) -> list[tuple[str, str]]:
        """The form fields of schedule.json, in a stable order."""
        fields = [("project", self.project), ("spider", self.spider)]
        if self.job_id:
            fields.append(("jobid", self.job_id))
        if self.priority:
            fields.append(("priority", repr(float(self.priority))))
        if self.version:
            fields.append(("_version", self.version))
        fields += [("setting", f"{name}={value}") for name, value in sorted(self.settings.items())]
        fields += sorted(self.args.items())
        return fields


def _check_value(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidJob(f"{what} must be a string, not {type(value).__name__}")
    if CONTROL.search(value):
        raise InvalidJob(f"{what} contains a control character (newline, tab, NUL...)")
    if len(value) > MAX_VALUE:
        raise InvalidJob(f"{what} is longer than {MAX_VALUE} characters")
    return value


def check_arguments(spider: str, args: Mapping[str, str]) -> dict[str, str]:
    rules = SPIDER_ARGUMENTS.get(spider)
    if rules is None:
        known = ", ".join(sorted(SPIDER_ARGUMENTS))
        raise InvalidJob(
            f"spider {spider!r} has no argument rules in ckancrawl/scrapyd/jobs.py (known: {known}); "
            "add its arguments to SPIDER_ARGUMENTS"
        )
    checked = {}
    for name, value in args.items():
        if name in RESERVED or not ARGUMENT_NAME.fullmatch(name):
            raise InvalidJob(f"spider argument name {name!r} is not allowed")
        _check_value(f"argument {name}", value)
        if name not in rules.accepted:
            raise InvalidJob(
                f"spider {spider!r} takes no argument {name!r}; it takes: {', '.join(sorted(rules.accepted))}"
            )
        try:
            checked[name] = rules.accepted[name](value)
        except ValueError as exc:
            raise InvalidJob(f"argument {name}={value!r} {exc}") from None
    for group in rules.exclusive:
        given = [name for name in group if name in checked]
        if len(given) > 1:
            raise InvalidJob(f"give only one of {', '.join(group)} to {spider!r} (got {', '.join(given)})")
    if rules.required_one_of and not any(name in checked for name in rules.required_one_of):
        raise InvalidJob(f"spider {spider!r} needs one of: {', '.join(rules.required_one_of)}")
    if rules.combination and (problem := rules.combination(checked)):
        raise InvalidJob(problem)
    return checked


def check_settings(settings: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for name, value in settings.items():
        if not isinstance(name, str) or not SETTING_NAME.fullmatch(name):
            raise InvalidJob(f"setting name {name!r} is not allowed: use Scrapy's UPPER_CASE names")
        value = _check_value(f"setting {name}", value)
        if SECRET_NAME.search(name) or re.search(r"://[^/@\s]*:[^/@\s]*@", value):
            raise InvalidJob(
                f"setting {name} looks like a secret: set it in the environment of the scrapyd process "
                "instead (per-job settings are shown by listjobs.json, in scrapyd's log and in the "
                "process list)"
            )
        checked[name] = value
    return checked


def job_request(
    project: str,
    spider: str,
    args: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    job_id: str | None = None,
    priority: float = 0.0,
    version: str | None = None,
) -> JobRequest:
    """A :class:`JobRequest` whose every part was checked; raises :class:`InvalidJob`."""
    check_name("project", project)
    check_name("spider", spider)
    if job_id is not None:
        check_job_id(job_id)
    if version is not None and not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", version):
        raise InvalidJob(f"version {version!r} is not allowed")
    if not isinstance(priority, (int, float)) or priority != priority:
        raise InvalidJob(f"priority {priority!r} is not a number")
    return JobRequest(
        project=project,
        spider=spider,
        args=check_arguments(spider, args or {}),
        settings=check_settings(settings or {}),
        job_id=job_id,
        priority=float(priority),
        version=version,
    )
