"""``./scripts/schedule daemon``: the scheduler process for hosts without cron."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

from tests.crawl import PROJECT_ROOT
from tests.fixtures.mongo import free_port
from tests.fixtures.scrapyd import JOB_SETTINGS, SECRETS
from ckancrawl.scrapyd.schedule import WEEKDAYS


def test_the_daemon_fires_a_run_that_is_due_and_keeps_going(scrapyd_server, deployed_version, tmp_path):
    due = datetime.now(timezone.utc) - timedelta(minutes=1)
    settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in JOB_SETTINGS.items())
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(
        f'[[job]]\nname = "probe"\nspider = "sites"\nweekday = "{WEEKDAYS[due.weekday()]}"\ntime = "{due:%H:%M}"\n'
        f'args = {{ url = "http://127.0.0.1:{free_port()}/" }}\nsettings = {{ {settings} }}\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(
        SCRAPYD_URL=scrapyd_server.url, SCRAPYD_USERNAME=scrapyd_server.username,
        SCRAPYD_PASSWORD=scrapyd_server.password, CKANCRAWL_SCHEDULE_FILE=str(schedule),
        CKANCRAWL_SCHEDULE_STATE=str(tmp_path / "state.json"),
    )
    daemon = subprocess.Popen(
        [str(PROJECT_ROOT / "scripts" / "schedule"), "daemon", "--interval", "0.3"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    job_id = f"probe-{due:%Y%m%dT%H%M}Z"
    try:
        with scrapyd_server.client() as client:
            deadline = time.monotonic() + 20
            while client.status(job_id) is None and time.monotonic() < deadline and daemon.poll() is None:
                time.sleep(0.2)
            time.sleep(1.0)  # a few more ticks: the run must not be fired again
            ids = [job.id for job in client.list_jobs().all()]
        assert daemon.poll() is None, daemon.communicate()
    finally:
        daemon.send_signal(signal.SIGINT)
        out, err = daemon.communicate(timeout=20)
    assert ids.count(job_id) == 1, (out, err)
    assert "Scheduler running (tick every 0.3 s)" in out
    assert f"fired {job_id} (probe)" in out
