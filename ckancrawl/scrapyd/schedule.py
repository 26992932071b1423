"""The weekly schedule, and the tick that fires what is due.

The default schedule is the original pipelines' cron: ``extensions`` every Sunday at
02:00 UTC, ``sites`` every Sunday at 03:00 UTC, and ``sites`` runs after
``extensions``: if that week's extensions job is still pending or running at 03:00,
sites waits for it (at most ``max_wait``, 6 hours by default, then starts anyway and
says so). A TOML file can replace it (``--schedule FILE`` or CKANCRAWL_SCHEDULE_FILE),
for example to add weekly harvests::

    [[job]]
    name = "extensions"
    spider = "extensions"
    weekday = "sunday"
    time = "02:00"          # UTC

    [[job]]
    name = "harvest-demo"
    spider = "harvest"
    weekday = "saturday"
    time = "22:30"
    after = "extensions"    # optional: the entry that must be done first
    args = { portal = "https://demo.ckan.org" }
    settings = { HARVEST_PAGE_SIZE = "500" }

:func:`tick` is meant to run every few minutes (cron, or ``./scripts/schedule daemon``).
It works in UTC whatever the host's time zone. Each run of an entry has a fixed job id,
``<entry>-<YYYYMMDD>T<HHMM>Z`` of its slot, so firing is idempotent: a run is fired
once, recorded in the state file, and not fired again if scrapyd already knows that job
id. A tick that comes late (the host was down) still fires a run up to ``catch_up``
(24 hours by default) after its slot; later than that the run is reported as missed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from ckancrawl.scrapyd.client import ScrapydClient
from ckancrawl.scrapyd.jobs import InvalidJob, check_name, job_request

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SUNDAY = 6
DEFAULT_CATCH_UP = timedelta(hours=24)
DEFAULT_MAX_WAIT = timedelta(hours=6)
#: Runs remembered in the state file (a few months of weekly runs).
STATE_KEEP = 500


@dataclass(frozen=True)
class Entry:
    """One weekly run: a spider with its arguments at a UTC weekday and time."""

    name: str
    spider: str
    weekday: int
    at: time
    args: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)
    #: The entry whose run of the same week must be done before this one starts.
    after: str | None = None

    def slot_at_or_before(self, moment: datetime) -> datetime:
        """The latest slot of this entry that is not after ``moment`` (UTC)."""
        moment = moment.astimezone(timezone.utc)
        days_back = (moment.weekday() - self.weekday) % 7
        day = (moment - timedelta(days=days_back)).date()
        slot = datetime.combine(day, self.at, tzinfo=timezone.utc)
        if slot > moment:
            slot -= timedelta(days=7)
        return slot

    def next_slot(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``."""
        return self.slot_at_or_before(moment) + timedelta(days=7)

    def job_id(self, slot: datetime) -> str:
        return f"{self.name}-{slot.astimezone(timezone.utc):%Y%m%dT%H%MZ}"

    def describe(self) -> str:
        text = f"every {WEEKDAYS[self.weekday].capitalize()} at {self.at:%H:%M} UTC: {self.spider}"
        if self.args:
            text += " " + " ".join(f"-a {k}={v}" for k, v in sorted(self.args.items()))
        if self.settings:
            text += " " + " ".join(f"-s {k}={v}" for k, v in sorted(self.settings.items()))
        if self.after:
            text += f" (after {self.after})"
        return text


DEFAULT_ENTRIES: tuple[Entry, ...] = (
    Entry("extensions", "extensions", SUNDAY, time(2, 0)),
    Entry("sites", "sites", SUNDAY, time(3, 0), after="extensions"),
)


def check_entries(entries: Sequence[Entry], project: str = "ckancrawl") -> tuple[Entry, ...]:
    """Entries checked (names, arguments, settings, ``after``), dependencies first."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", entry.name):
            raise InvalidJob(f"schedule entry name {entry.name!r}: use lower-case letters, digits, '-' and '_'")
        if entry.name in by_name:
            raise InvalidJob(f"schedule entry {entry.name!r} is defined twice")
        job_request(project, entry.spider, dict(entry.args), dict(entry.settings), job_id=entry.job_id(_EPOCH))
        by_name[entry.name] = entry
    ordered: list[Entry] = []

    def visit(entry: Entry, path: tuple[str, ...]) -> None:
        if entry in ordered:
            return
        if entry.name in path:
            raise InvalidJob(f"schedule entries wait for each other in a circle: {' -> '.join(path + (entry.name,))}")
        if entry.after is not None:
            if entry.after not in by_name:
                raise InvalidJob(f"schedule entry {entry.name!r} runs after {entry.after!r}, which is not in the schedule")
            visit(by_name[entry.after], path + (entry.name,))
        ordered.append(entry)

    for entry in entries:
        visit(entry, ())
    return tuple(ordered)


_EPOCH = datetime(2000, 1, 2, tzinfo=timezone.utc)


def load_entries(path: Path) -> tuple[Entry, ...]:
    """Entries from a TOML schedule file (see the module docstring)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidJob(f"schedule file {path}: {exc}") from None
    jobs = data.get("job")
    if not isinstance(jobs, list) or not jobs:
        raise InvalidJob(f"schedule file {path}: no [[job]] entries")
    entries = []
    for number, raw in enumerate(jobs, 1):
        where = f"schedule file {path}, job {number}"
        unknown = set(raw) - {"name", "spider", "weekday", "time", "args", "settings", "after"}
        if unknown:
            raise InvalidJob(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        try:
            spider = check_name("spider", raw["spider"])
            weekday = WEEKDAYS.index(str(raw["weekday"]).lower())
            at = time.fromisoformat(str(raw["time"]))
        except KeyError as exc:
            raise InvalidJob(f"{where}: {exc.args[0]} is missing") from None
        except ValueError as exc:
            raise InvalidJob(f"{where}: {exc} (weekday: monday..sunday; time: HH:MM in UTC)") from None
        entries.append(
            Entry(
                name=str(raw.get("name", spider)),
                spider=spider,
                weekday=weekday,
                at=at.replace(tzinfo=None),
                args={str(k): str(v) for k, v in (raw.get("args") or {}).items()},
                settings={str(k): str(v) for k, v in (raw.get("settings") or {}).items()},
                after=raw.get("after"),
            )
        )
    return check_entries(entries)


# -- state ------------------------------------------------------------------------------------


@dataclass
class State:
    """Which runs were fired or found missed, by job id (the state file, JSON)."""

    fired: dict[str, str] = field(default_factory=dict)
    missed: dict[str, str] = field(default_factory=dict)
    #: The first tick (ISO 8601): runs due before it are not reported as missed.
    started: str | None = None

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except ValueError as exc:
            raise ValueError(f"the schedule state file {path} is not JSON ({exc}); move it away to start afresh") from None
        return cls(dict(data.get("fired", {})), dict(data.get("missed", {})), data.get("started"))

    def save(self, path: Path) -> None:
        for record in (self.fired, self.missed):
            for job_id in sorted(record, key=record.__getitem__)[:-STATE_KEEP]:
                del record[job_id]
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"fired": self.fired, "missed": self.missed, "started": self.started}, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[State]:
    """The state, locked against other ticks for the duration, saved at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = State.load(path)
        try:
            yield state
        finally:
            # Also after a failed tick: the runs it fired before failing stay recorded.
            state.save(path)


# -- the tick ----------------------------------------------------------------------------------


@dataclass
class TickReport:
    #: (entry name, job id)
    fired: list[tuple[str, str]] = field(default_factory=list)
    #: (entry name, job id, why it waits)
    waiting: list[tuple[str, str, str]] = field(default_factory=list)
    #: (entry name, job id, what happened)
    notes: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"fired {job_id} ({name})" for name, job_id in self.fired]
        lines += [f"waiting {job_id}: {why}" for _, job_id, why in self.waiting]
        lines += [f"{what}: {job_id}" for _, job_id, what in self.notes]
        return lines


def tick(
    client: ScrapydClient,
    entries: Sequence[Entry],
    state: State,
    now: datetime,
    catch_up: timedelta = DEFAULT_CATCH_UP,
    max_wait: timedelta = DEFAULT_MAX_WAIT,
) -> TickReport:
    """Fire every run that is due and may start (see the module docstring)."""
    now = now.astimezone(timezone.utc)
    entries = check_entries(entries, client.project)
    if state.started is None:
        state.started = now.isoformat()
    started = datetime.fromisoformat(state.started)
    by_name = {entry.name: entry for entry in entries}
    report = TickReport()
    for entry in entries:
        slot = entry.slot_at_or_before(now)
        job_id = entry.job_id(slot)
        if job_id in state.fired or job_id in state.missed:
            continue
        if now - slot > catch_up:
            state.missed[job_id] = now.isoformat()
            if slot >= started:  # not a run from before the schedule was installed
                hours = catch_up.total_seconds() / 3600
                report.notes.append((entry.name, job_id, f"missed (no tick within {hours:g} h of its slot)"))
            continue
        if client.status(job_id) is not None:
            state.fired[job_id] = now.isoformat()
            report.notes.append((entry.name, job_id, "already known to scrapyd, not fired again"))
            continue
        if entry.after is not None:
            why = _must_wait(client, by_name[entry.after], slot, state, now, max_wait)
            if why:
                report.waiting.append((entry.name, job_id, why))
                continue
            if now - slot > max_wait and _dependency_busy(client, by_name[entry.after], slot, state):
                hours = max_wait.total_seconds() / 3600
                report.notes.append((entry.name, job_id, f"started although {entry.after} is still busy after {hours:g} h"))
        request = job_request(client.project, entry.spider, dict(entry.args), dict(entry.settings), job_id=job_id)
        client.schedule(request)
        state.fired[job_id] = now.isoformat()
        report.fired.append((entry.name, job_id))
    return report


def _dependency_busy(client: ScrapydClient, dependency: Entry, slot: datetime, state: State) -> bool:
    dep_id = dependency.job_id(dependency.slot_at_or_before(slot))
    return dep_id in state.fired and client.status(dep_id) in ("pending", "running")


def _must_wait(
    client: ScrapydClient, dependency: Entry, slot: datetime, state: State, now: datetime, max_wait: timedelta
) -> str | None:
    """Why a run due at ``slot`` must wait for ``dependency``'s run of the same week, or None."""
    if now - slot > max_wait:
        return None
    dep_id = dependency.job_id(dependency.slot_at_or_before(slot))
    if dep_id in state.missed:
        return None
    if dep_id not in state.fired:
        return f"{dep_id} has not been fired yet"
    current = client.status(dep_id)
    if current in ("pending", "running"):
        return f"{dep_id} is {current}"
    return None


def upcoming(entries: Sequence[Entry], now: datetime) -> list[tuple[datetime, Entry]]:
    """Each entry's next slot after ``now``, soonest first."""
    return sorted(((entry.next_slot(now), entry) for entry in entries), key=lambda pair: pair[0])


def parse_now(text: str | None) -> datetime:
    """``--now`` for ticks run by hand; the current time when None."""
    if text is None:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def describe_entries(entries: Sequence[Entry], now: datetime) -> list[str]:
    lines = []
    for slot, entry in upcoming(entries, now):
        lines.append(f"{entry.name:<14} next {slot:%a %Y-%m-%d %H:%M} UTC ({entry.job_id(slot)}); {entry.describe()}")
    return lines
