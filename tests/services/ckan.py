"""CKAN 2.11 for the test catalog: its ckan.ini, its one-time bootstrap, and gunicorn.

CKAN runs from its own virtualenv (.services/ckan-venv) under `gunicorn -w 2` on
127.0.0.1, with the plugins `activity datastore scheming_datasets` and the catalog's
`site` and `extension` dataset types from tests/ckan/*.yaml. The config and the
bootstrap (migrated database, sysadmin, API token, organization) are made once and
reused while nothing they depend on changes.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from .layout import Layout
from .process import ServiceError, require_free_port, run, stop_pid, stop_stale, wait_for_http

PLUGINS = "activity datastore scheming_datasets"
DB_USER, DATASTORE_READ_USER, DB_PASSWORD = "ckan_default", "datastore_default", "pass"
ADMIN = "ckancrawl_admin"
ORGANIZATION = "ckancrawl-test-org"


class CkanServer:
    def __init__(self, layout: Layout, solr_url: str, redis_url: str):
        self.layout = layout
        self.port = layout.ports.ckan
        self.ini = layout.ckan_dir / "ckan.ini"
        self.permissions_sql = layout.ckan_dir / "datastore-permissions.sql"
        self.record = layout.ckan_dir / "bootstrap.json"
        self.pid_file = layout.run_dir / "gunicorn.pid"
        self.log = layout.log_dir / "ckan.log"
        self.solr_url = solr_url
        self.redis_url = redis_url
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def python(self) -> Path:
        return self.layout.ckan_venv / "bin" / "python"

    # --- configuration ---------------------------------------------------------------------

    def settings(self) -> list[str]:
        pg = f"postgresql://{{user}}:{DB_PASSWORD}@127.0.0.1:{self.layout.ports.postgres}/{{db}}"
        schemas = " ".join(f"file://{self.layout.ckan_sources / name}" for name in ("site.yaml", "extension.yaml"))
        return [
            f"sqlalchemy.url = {pg.format(user=DB_USER, db='ckan_default')}",
            f"ckan.site_url = {self.url}",
            f"solr_url = {self.solr_url}",
            f"ckan.redis.url = {self.redis_url}",
            f"ckan.plugins = {PLUGINS}",
            f"ckan.datastore.write_url = {pg.format(user=DB_USER, db='datastore_default')}",
            f"ckan.datastore.read_url = {pg.format(user=DATASTORE_READ_USER, db='datastore_default')}",
            f"scheming.dataset_schemas = {schemas}",
            f"ckan.storage_path = {self.layout.ckan_dir / 'storage'}",
            "ckan.auth.create_unowned_dataset = true",
        ]

    def ensure_config(self) -> bool:
        """Write ckan.ini if it is missing or its settings changed; True when it was written."""
        if not self.python.exists():
            raise ServiceError(f"CKAN is not installed in {self.layout.ckan_venv}; run ./scripts/test, "
                               "which installs it")
        settings = self.settings()
        fingerprint = hashlib.sha256("\n".join(settings).encode()).hexdigest()
        stamp = self.layout.ckan_dir / "ckan.ini.settings"
        if self.ini.exists() and self.permissions_sql.exists() and stamp.exists() \
                and stamp.read_text().strip() == fingerprint:
            return False
        run([str(self.python), str(self.layout.ckan_sources / "bootstrap.py"), "config", str(self.ini),
             str(self.permissions_sql), *(s.replace(" = ", "=", 1) for s in settings)],
            what="writing ckan.ini")
        stamp.write_text(fingerprint + "\n")
        return True

    def bootstrap_fingerprint(self) -> str:
        """What the bootstrapped databases depend on: the CKAN install, the script, the secrets."""
        parts = [(self.layout.ckan_venv / ".installed-pins").read_text(errors="replace")
                 if (self.layout.ckan_venv / ".installed-pins").exists() else "",
                 (self.layout.ckan_sources / "bootstrap.py").read_text(), PLUGINS, ADMIN, ORGANIZATION]
        parts += [line for line in self.ini.read_text().splitlines()
                  if line.startswith(("SECRET_KEY", "api_token.jwt", "beaker.session.secret"))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def bootstrap_record(self) -> dict | None:
        """The saved bootstrap (token, admin, org) if it is still valid, else None."""
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("fingerprint") == self.bootstrap_fingerprint() else None

    def bootstrap(self) -> dict:
        """Migrate the (empty) database and create the sysadmin, its token and the organization."""
        output = run([str(self.python), str(self.layout.ckan_sources / "bootstrap.py"), "setup", str(self.ini),
                      ADMIN, ORGANIZATION], what="bootstrapping CKAN", timeout=300)
        lines = [line for line in output.splitlines() if line.startswith("BOOTSTRAP-RESULT ")]
        if not lines:
            raise ServiceError(f"bootstrapping CKAN printed no result:\n{output[-2000:]}")
        record = json.loads(lines[-1].split(" ", 1)[1])
        record["fingerprint"] = self.bootstrap_fingerprint()
        self.record.write_text(json.dumps(record, indent=2) + "\n")
        return record

    # --- the server ------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        """Start gunicorn and wait until the Action API answers status_show."""
        self.stop_stale()
        require_free_port(self.port, "CKAN", stale_markers=("gunicorn", "CKAN_INI=", "wsgi:application"))
        (self.layout.ckan_dir / "storage").mkdir(parents=True, exist_ok=True)
        gunicorn = self.layout.ckan_venv / "bin" / "gunicorn"
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{self.port}", "--pid", str(self.pid_file),
                 "--timeout", "120", "--graceful-timeout", "5", "--chdir", str(self.layout.ckan_sources),
                 "--env", f"CKAN_INI={self.ini}", "wsgi:application"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for_http(f"{self.url}/api/3/action/status_show", timeout=timeout, service="CKAN (gunicorn)",
                      process=self._process, log=self.log)

    def stop(self) -> None:
        """Stop gunicorn and its workers (SIGTERM to the group, SIGKILL after 10 s)."""
        if self._process is not None:
            stop_pid(self._process.pid, group=True)
            self._process.wait()
            self._process = None
        self.stop_stale()

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop_stale(self) -> None:
        """Stop a gunicorn of ours left behind by a killed session (found by its config path)."""
        stop_stale(self.pid_file, str(self.ini), group=True)
