"""The weekly schedule: its UTC slots, job ids, schedule files, and the cron entry."""
from __future__ import annotations

import stat
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone

import pytest

from ckancrawl.scrapyd import cli
from ckancrawl.scrapyd.jobs import InvalidJob
from ckancrawl.scrapyd.schedule import DEFAULT_ENTRIES, Entry, check_entries, load_entries
from tests.crawl import PROJECT_ROOT

UTC = timezone.utc
EXTENSIONS, SITES = DEFAULT_ENTRIES


def test_the_default_schedule_is_the_original_cron_in_utc():
    assert (EXTENSIONS.spider, EXTENSIONS.weekday, EXTENSIONS.at) == ("extensions", 6, time(2, 0))
    assert (SITES.spider, SITES.weekday, SITES.at, SITES.after) == ("sites", 6, time(3, 0), "extensions")


def test_the_slot_of_a_moment_is_the_last_sunday_run_before_it():
    saturday_night = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert EXTENSIONS.slot_at_or_before(saturday_night) == datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    assert EXTENSIONS.next_slot(saturday_night) == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    on_time = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    assert EXTENSIONS.slot_at_or_before(on_time) == on_time


def test_slots_are_computed_in_utc_whatever_the_local_offset():
    # Sunday 03:30 in UTC+05:00 is still Saturday 22:30 UTC: this week's run is not due.
    sunday_in_karachi = datetime(2026, 11, 29, 3, 30, tzinfo=timezone(timedelta(hours=5)))
    assert SITES.slot_at_or_before(sunday_in_karachi) == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def test_each_run_has_a_fixed_job_id_from_its_slot():
    assert SITES.job_id(datetime(2026, 11, 29, 3, 0, tzinfo=UTC)) == "sites-20261129T0300Z"


def test_a_schedule_file_adds_a_weekly_harvest(tmp_path):
    path = tmp_path / "schedule.toml"
    path.write_text(
        '[[job]]\nspider = "extensions"\nweekday = "sunday"\ntime = "02:00"\n\n'
        '[[job]]\nname = "harvest-demo"\nspider = "harvest"\nweekday = "Saturday"\ntime = "22:30"\n'
        'after = "extensions"\nargs = { portal = "https://demo.ckan.org", since = "all" }\n'
        'settings = { HARVEST_PAGE_SIZE = "500" }\n'
    )
    extensions, harvest = load_entries(path)
    assert extensions.name == "extensions"
    assert harvest == Entry(
        "harvest-demo", "harvest", 5, time(22, 30), {"portal": "https://demo.ckan.org", "since": "all"},
        {"HARVEST_PAGE_SIZE": "500"}, after="extensions",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[job]]\nspider = "sites"\nweekday = "sundai"\ntime = "03:00"\n', "weekday: monday..sunday"),
        ('[[job]]\nspider = "sites"\nweekday = "sunday"\ntime = "25:00"\n', "time: HH:MM in UTC"),
        ('[[job]]\nspider = "sites"\nweekday = "sunday"\n', "time is missing"),
        ('[[job]]\nspider = "sites"\nweekday = "sunday"\ntime = "03:00"\nevery = "week"\n', "unknown keys every"),
        ('[[job]]\nspider = "sites"\nweekday = "sunday"\ntime = "03:00"\nafter = "extensions"\n', "not in the schedule"),
        ('[[job]]\nspider = "sites"\nweekday = "sunday"\ntime = "03:00"\nsettings = { GITHUB_TOKEN = "x" }\n',
         "looks like a secret"),
        ('[[job]]\nspider = "harvest"\nweekday = "sunday"\ntime = "03:00"\n', "needs one of: portal, portals"),
        ("job = 1\n", r"no \[\[job\]\] entries"),
        ("[[job]\n", "schedule file"),
    ],
)
def test_a_wrong_schedule_file_is_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    with pytest.raises(InvalidJob, match=message):
        load_entries(path)


def test_entries_that_wait_for_each_other_in_a_circle_are_refused():
    a = Entry("a", "sites", 6, time(3), after="b")
    b = Entry("b", "extensions", 6, time(2), after="a")
    with pytest.raises(InvalidJob, match="in a circle"):
        check_entries([a, b])


def test_dependencies_come_first_whatever_the_order_given():
    assert [e.name for e in check_entries([SITES, EXTENSIONS])] == ["extensions", "sites"]


# -- the cron entry ------------------------------------------------------------------------

FAKE_CRONTAB = '''#!/usr/bin/env python3
"""Stands in for crontab(1): -l prints the table (or fails as cron does), - replaces it."""
import pathlib, sys
table = pathlib.Path(__file__).with_name("table")
if sys.argv[1:] == ["-l"]:
    if not table.exists():
        sys.exit("no crontab for " + "root")
    sys.stdout.write(table.read_text())
elif sys.argv[1:] == ["-"]:
    table.write_text(sys.stdin.read())
else:
    sys.exit("usage: crontab [-l | -]")
'''


@pytest.fixture
def crontab(tmp_path, monkeypatch):
    command = tmp_path / "crontab"
    command.write_text(FAKE_CRONTAB)
    command.chmod(0o755)
    monkeypatch.setenv("CKANCRAWL_CRONTAB", f"{sys.executable} {command}")
    monkeypatch.setenv("CKANCRAWL_SERVICES_DIR", str(tmp_path / "services"))
    monkeypatch.delenv("CKANCRAWL_SCHEDULE_FILE", raising=False)
    monkeypatch.delenv("CKANCRAWL_SCHEDULE_STATE", raising=False)
    return tmp_path / "table"


def test_install_adds_a_tick_every_five_minutes_to_an_empty_crontab(crontab, capsys):
    assert cli.main(["install"]) == 0
    lines = crontab.read_text().splitlines()
    assert lines[0] == cli.BEGIN and lines[-1] == cli.END
    assert lines[1].startswith(f"*/5 * * * * {PROJECT_ROOT}/scripts/schedule tick >> ")
    assert "every Sunday at 02:00 UTC: extensions" in capsys.readouterr().out


def test_install_keeps_other_entries_and_replaces_its_own(crontab):
    crontab.write_text("MAILTO=ops@example.org\n0 4 * * * /usr/local/bin/backup\n")
    assert cli.main(["install"]) == 0
    assert cli.main(["install", "--every", "10"]) == 0
    text = crontab.read_text()
    assert text.startswith("MAILTO=ops@example.org\n0 4 * * * /usr/local/bin/backup\n")
    assert text.count(cli.BEGIN) == 1
    assert "*/10 * * * * " in text and "*/5 * * * * " not in text
    assert cli.main(["uninstall"]) == 0
    assert crontab.read_text() == "MAILTO=ops@example.org\n0 4 * * * /usr/local/bin/backup\n"


def test_the_cron_entry_reads_the_password_from_a_private_file(crontab, tmp_path, capsys):
    env_file = tmp_path / "schedule.env"
    env_file.write_text("SCRAPYD_URL=http://127.0.0.1:6800/\nSCRAPYD_USERNAME=ops\nSCRAPYD_PASSWORD=s3cret\n")
    env_file.chmod(0o644)
    assert cli.main(["install", "--env-file", str(env_file)]) == 1
    assert f"chmod 600 {env_file}" in capsys.readouterr().err
    env_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert cli.main(["install", "--env-file", str(env_file)]) == 0
    text = crontab.read_text()
    assert f"CKANCRAWL_ENV_FILE={env_file} " in text
    assert "s3cret" not in text


def test_without_cron_the_error_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setenv("CKANCRAWL_CRONTAB", "/nonexistent/crontab")
    assert cli.main(["install"]) == 1
    assert "install cron (apt-get install -y cron), or run './scripts/schedule daemon'" in capsys.readouterr().err


def test_plan_shows_the_next_runs_in_utc():
    done = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "schedule"), "plan", "--now", "2026-11-29T02:30:00Z"],
        capture_output=True, text=True, check=True,
    )
    assert done.stdout.splitlines() == [
        "sites          next Sun 2026-11-29 03:00 UTC (sites-20261129T0300Z); every Sunday at 03:00 UTC: sites (after extensions)",
        "extensions     next Sun 2026-12-06 02:00 UTC (extensions-20261206T0200Z); every Sunday at 02:00 UTC: extensions",
    ]


def test_a_private_env_file_is_required_by_the_script_too(tmp_path):
    env_file = tmp_path / "schedule.env"
    env_file.write_text("SCRAPYD_PASSWORD=s3cret\n")
    env_file.chmod(0o640)
    done = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "schedule"), "plan"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "CKANCRAWL_ENV_FILE": str(env_file)},
    )
    assert done.returncode == 1
    assert "make it private (chmod 600" in done.stderr
