"""``./scripts/schedule``: the weekly schedule on scrapyd, on-demand jobs, and watching them.

Subcommands:

- ``plan``: the schedule and each entry's next run (UTC).
- ``install`` / ``uninstall``: add or remove the cron entry that runs ``tick`` every
  5 minutes (a marked block in the user's crontab; other entries are kept).
- ``tick``: fire the runs that are due (what cron runs); silent when nothing happens.
- ``daemon``: ``tick`` every minute, in the foreground, for hosts without cron (run it
  under systemd or another supervisor).
- ``run SPIDER [-a NAME=VALUE]... [-s NAME=VALUE]... [--job-id ID]``: schedule a job now.
- ``harvest URL [-a NAME=VALUE]...``: schedule a harvest of one portal now.
- ``jobs``: pending, running and finished jobs.
- ``failures``: finished jobs whose summary flagged them, or that ended without a
  summary (killed, crashed); exits with 1 when there is any.
- ``cancel JOB... [--signal INT|TERM|KILL]``: cancel pending or running jobs; a running
  job closes gracefully on the first cancel and stops at once on the second.
- ``status``: scrapyd's load and the deployed versions.

Environment: SCRAPYD_URL, SCRAPYD_USERNAME, SCRAPYD_PASSWORD (see
ckancrawl.scrapyd.client); CKANCRAWL_SCHEDULE_FILE (a TOML schedule, see
ckancrawl.scrapyd.schedule); CKANCRAWL_SCHEDULE_STATE (the state file, default
.services/schedule/state.json); CKANCRAWL_CRONTAB (the crontab command, default
``crontab``).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ckancrawl.scrapyd.client import JobList, ScrapydClient, ScrapydError
from ckancrawl.scrapyd.job_logs import outcome
from ckancrawl.scrapyd.jobs import InvalidJob, check_job_id, job_request
from ckancrawl.scrapyd.schedule import (
    DEFAULT_ENTRIES,
    describe_entries,
    load_entries,
    locked_state,
    parse_now,
    tick,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BEGIN = "# BEGIN ckancrawl schedule (managed by ./scripts/schedule install; edits are replaced)"
END = "# END ckancrawl schedule"


class CommandError(Exception):
    pass


def services_dir() -> Path:
    return Path(os.environ.get("CKANCRAWL_SERVICES_DIR") or PROJECT_ROOT / ".services")


def state_path() -> Path:
    return Path(os.environ.get("CKANCRAWL_SCHEDULE_STATE") or services_dir() / "schedule" / "state.json")


def entries_from(args: argparse.Namespace) -> tuple:
    path = args.schedule or os.environ.get("CKANCRAWL_SCHEDULE_FILE")
    return load_entries(Path(path)) if path else DEFAULT_ENTRIES


def pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    found = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise InvalidJob(f"{what} {value!r} is not NAME=VALUE")
        found[name] = rest
    return found


# -- cron ---------------------------------------------------------------------------------------


def crontab_command() -> list[str]:
    return shlex.split(os.environ.get("CKANCRAWL_CRONTAB", "crontab"))


def read_crontab() -> str:
    try:
        done = subprocess.run([*crontab_command(), "-l"], capture_output=True, text=True)
    except FileNotFoundError:
        raise CommandError(
            "crontab was not found: install cron (apt-get install -y cron), or run "
            "'./scripts/schedule daemon' under a service manager instead"
        ) from None
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return ""
        raise CommandError(f"crontab -l failed: {done.stderr.strip()}")
    return done.stdout


def write_crontab(text: str) -> None:
    done = subprocess.run([*crontab_command(), "-"], input=text, capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(f"crontab - refused the new crontab: {done.stderr.strip()}")


def without_block(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def cron_block(every: int, env_file: Path | None, schedule_file: Path | None) -> list[str]:
    script = PROJECT_ROOT / "scripts" / "schedule"
    log = services_dir() / "schedule" / "tick.log"
    env = []
    if env_file is not None:
        env.append(f"CKANCRAWL_ENV_FILE={shlex.quote(str(env_file))}")
    if schedule_file is not None:
        env.append(f"CKANCRAWL_SCHEDULE_FILE={shlex.quote(str(schedule_file))}")
    if "CKANCRAWL_SCHEDULE_STATE" in os.environ:
        env.append(f"CKANCRAWL_SCHEDULE_STATE={shlex.quote(str(state_path()))}")
    command = " ".join([*env, shlex.quote(str(script)), "tick", ">>", shlex.quote(str(log)), "2>&1"])
    # Every few minutes whatever the host's time zone: the tick itself works in UTC.
    return [BEGIN, f"*/{every} * * * * {command}", END]


def check_env_file(path: Path) -> Path:
    path = path.resolve()
    if not path.is_file():
        raise CommandError(f"the environment file {path} does not exist")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CommandError(f"the environment file {path} holds a password: make it private (chmod 600 {path})")
    return path


def install(args: argparse.Namespace) -> int:
    entries = entries_from(args)
    env_file = check_env_file(Path(args.env_file)) if args.env_file else None
    schedule_file = args.schedule or os.environ.get("CKANCRAWL_SCHEDULE_FILE")
    block = cron_block(args.every, env_file, Path(schedule_file).resolve() if schedule_file else None)
    if args.print:
        print("\n".join(block))
        return 0
    lines = without_block(read_crontab())
    while lines and not lines[-1].strip():
        lines.pop()
    write_crontab("\n".join([*lines, *block]) + "\n")
    (services_dir() / "schedule").mkdir(parents=True, exist_ok=True)
    print(f"Installed in the crontab: ./scripts/schedule tick every {args.every} minutes. The schedule (UTC):")
    print("\n".join("  " + line for line in describe_entries(entries, parse_now(None))))
    return 0


def uninstall(args: argparse.Namespace) -> int:
    current = read_crontab()
    lines = without_block(current)
    if lines == current.splitlines():
        print("The crontab has no ckancrawl schedule.")
        return 0
    write_crontab("\n".join(lines) + "\n" if lines else "")
    print("Removed the ckancrawl schedule from the crontab.")
    return 0


# -- scheduling ---------------------------------------------------------------------------------


def run_tick(client: ScrapydClient, args: argparse.Namespace) -> int:
    entries = entries_from(args)
    with locked_state(state_path()) as state:
        report = tick(client, entries, state, parse_now(args.now))
    stamp = parse_now(args.now).strftime("%Y-%m-%dT%H:%M:%SZ")
    for line in report.lines():
        print(f"{stamp} {line}", flush=True)
    return 0


def daemon(client: ScrapydClient, args: argparse.Namespace) -> int:
    print(f"Scheduler running (tick every {args.interval:g} s); the schedule (UTC):", flush=True)
    print("\n".join("  " + line for line in describe_entries(entries_from(args), parse_now(None))), flush=True)
    while True:
        try:
            run_tick(client, argparse.Namespace(**{**vars(args), "now": None}))
        except ScrapydError as exc:
            print(f"{parse_now(None):%Y-%m-%dT%H:%M:%SZ} tick failed, will try again: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


def run_now(client: ScrapydClient, args: argparse.Namespace) -> int:
    request = job_request(
        client.project,
        args.spider,
        pairs(args.arg, "spider argument"),
        pairs(args.set, "setting"),
        job_id=args.job_id,
        priority=args.priority,
    )
    job_id = client.schedule(request)
    print(job_id)
    return 0


def harvest(client: ScrapydClient, args: argparse.Namespace) -> int:
    arguments = {**pairs(args.arg, "spider argument"), "portal": args.portal}
    request = job_request(client.project, "harvest", arguments, pairs(args.set, "setting"), job_id=args.job_id)
    print(client.schedule(request))
    return 0


# -- watching -----------------------------------------------------------------------------------


def _job_rows(jobs: JobList) -> list[dict[str, Any]]:
    return [
        {"state": job.state, "id": job.id, "spider": job.spider, "start": job.start_time, "end": job.end_time,
         "args": job.args}
        for job in jobs.all()
    ]


def list_jobs(client: ScrapydClient, args: argparse.Namespace) -> int:
    rows = _job_rows(client.list_jobs())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("No jobs.")
        return 0
    print(f"{'STATE':<9} {'JOB':<34} {'SPIDER':<11} {'STARTED':<19} {'ENDED':<19}")
    for row in rows:
        start = (row["start"] or "-")[:19]
        end = (row["end"] or "-")[:19]
        print(f"{row['state']:<9} {row['id']:<34} {row['spider']:<11} {start:<19} {end:<19}")
    return 0


def failures(client: ScrapydClient, args: argparse.Namespace) -> int:
    finished = sorted(client.list_jobs().finished, key=lambda job: job.end_time or "", reverse=True)
    outcomes = [outcome(job.id, job.spider, client.job_log(job)) for job in finished]
    shown = outcomes if args.all else [o for o in outcomes if o.failed]
    if args.json:
        print(json.dumps([o.__dict__ for o in shown], indent=1, default=str))
    elif not shown:
        print(f"No failed job among the {len(finished)} finished jobs scrapyd remembers.")
    else:
        for o in shown:
            print(f"{o.verdict.upper():<11} {o.job_id:<34} {o.spider:<11} {o.detail}")
    return 1 if any(o.failed for o in outcomes) else 0


def cancel(client: ScrapydClient, args: argparse.Namespace) -> int:
    status = 0
    for job_id in args.jobs:
        previous = client.cancel(check_job_id(job_id), signal=args.signal)
        if previous is None:
            print(f"{job_id}: no such pending or running job", file=sys.stderr)
            status = 1
        else:
            print(f"{job_id}: cancelled (was {previous})")
    return status


def daemon_status(client: ScrapydClient, args: argparse.Namespace) -> int:
    load = client.daemon_status()
    try:
        versions = client.list_versions()
    except ScrapydError:
        versions = []
    print(
        f"scrapyd at {client.url} ({load.get('node_name')}): pending {load['pending']}, running {load['running']}, "
        f"finished {load['finished']}; {client.project} versions: {', '.join(versions) or 'none deployed'}"
    )
    return 0


def plan(args: argparse.Namespace) -> int:
    print("\n".join(describe_entries(entries_from(args), parse_now(args.now))))
    return 0


# -- the command line ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="scripts/schedule",
        description="The weekly ckancrawl schedule on scrapyd, on-demand jobs, and watching them.",
        epilog="Environment: SCRAPYD_URL, SCRAPYD_USERNAME, SCRAPYD_PASSWORD; CKANCRAWL_SCHEDULE_FILE, "
        "CKANCRAWL_SCHEDULE_STATE, CKANCRAWL_ENV_FILE (a private file of such variables, read first).",
    )
    main.add_argument("--url", help="scrapyd's URL (default: SCRAPYD_URL, else scrapy.cfg's [deploy] url)")
    main.add_argument("--project", help="the scrapyd project (default: ckancrawl)")
    main.add_argument("--schedule", help="a TOML schedule file replacing the default schedule")
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plan", help="show the schedule and the next runs")
    p.add_argument("--now", help=argparse.SUPPRESS)
    p = sub.add_parser("install", help="install the cron entry that runs 'tick' every few minutes")
    p.add_argument("--every", type=int, default=5, choices=range(1, 31), metavar="MINUTES", help="tick interval (5)")
    p.add_argument("--env-file", help="a private file (chmod 600) of SCRAPYD_* variables for the cron job")
    p.add_argument("--print", action="store_true", help="print the crontab entry instead of installing it")
    sub.add_parser("uninstall", help="remove the cron entry")
    p = sub.add_parser("tick", help="fire the runs that are due (run by cron)")
    p.add_argument("--now", help="pretend it is this UTC time (ISO 8601), to catch up by hand")
    p = sub.add_parser("daemon", help="tick in the foreground, for hosts without cron")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between ticks (60)")
    p = sub.add_parser("run", help="schedule a job now")
    p.add_argument("spider")
    p.add_argument("-a", dest="arg", action="append", metavar="NAME=VALUE", help="spider argument")
    p.add_argument("-s", dest="set", action="append", metavar="NAME=VALUE", help="Scrapy setting (no secrets)")
    p.add_argument("--job-id", help="the job id (default: scrapyd's)")
    p.add_argument("--priority", type=float, default=0.0)
    p = sub.add_parser("harvest", help="schedule a harvest of one portal now")
    p.add_argument("portal", help="the portal's URL")
    p.add_argument("-a", dest="arg", action="append", metavar="NAME=VALUE", help="more arguments (since=, method=)")
    p.add_argument("-s", dest="set", action="append", metavar="NAME=VALUE", help="Scrapy setting (no secrets)")
    p.add_argument("--job-id")
    p = sub.add_parser("jobs", help="list pending, running and finished jobs")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("failures", help="finished jobs that were flagged or ended without a summary")
    p.add_argument("--all", action="store_true", help="show every finished job with its verdict")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser(
        "cancel", help="cancel pending or running jobs",
        description="A running job gets SIGINT and closes gracefully (its summary says 'shutdown'); "
        "cancelling it again forces it to stop at once, without a summary.",
    )
    p.add_argument("jobs", nargs="+", metavar="JOB")
    p.add_argument("--signal", choices=("INT", "TERM", "KILL"), help="the signal for a running job (INT)")
    sub.add_parser("status", help="scrapyd's load and the deployed versions")
    return main


COMMANDS = {
    "tick": run_tick,
    "daemon": daemon,
    "run": run_now,
    "harvest": harvest,
    "jobs": list_jobs,
    "failures": failures,
    "cancel": cancel,
    "status": daemon_status,
}
LOCAL = {"plan": plan, "install": install, "uninstall": uninstall}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command in LOCAL:
            return LOCAL[args.command](args)
        client = ScrapydClient.from_env(url=args.url, project=args.project)
        try:
            return COMMANDS[args.command](client, args)
        finally:
            client.close()
    except (ScrapydError, InvalidJob, CommandError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
