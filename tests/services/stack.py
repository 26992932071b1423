"""The whole test catalog: PostgreSQL, Redis, the Solr stand-in and CKAN, in order.

`CatalogStack.start()` brings every service up and gives the session a known catalog:
the CKAN and datastore databases are re-created from template databases made right
after the one-time bootstrap (so they hold the sysadmin, its token and one
organization, and no dataset), the search index starts empty and Redis starts empty.
`stop()` stops everything. Only one session at a time can own the stack (a lock file
in /tmp, since the ports are the machine's); another waits for it. Services left
running by a session that was killed are found through their pid files, or, when
another checkout left them, as the listener on the port with our command line, and are
stopped (PostgreSQL of this checkout is reused).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .ckan import DATASTORE_READ_USER, DB_PASSWORD, DB_USER, CkanServer
from .layout import Layout
from .postgres import Postgres
from .process import ServiceError, reserve_ports
from .redis import Redis
from .solr import SolrStandinService

DATABASES = {"ckan_default": "ckan_template", "datastore_default": "datastore_template"}
LOCK_WAIT_SECONDS = float(os.environ.get("CKANCRAWL_STACK_LOCK_WAIT", "900"))


class CatalogStack:
    def __init__(self, layout: Layout | None = None):
        self.layout = layout or Layout.from_env()
        self.postgres = Postgres(self.layout)
        self.redis = Redis(self.layout)
        self.solr = SolrStandinService(self.layout)
        self.ckan = CkanServer(self.layout, self.solr.url, self.redis.url)
        self.record: dict = {}
        self.timings: dict[str, float] = {}
        self._lock_file = None

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.timings[phase] = round(self.timings.get(phase, 0) + time.monotonic() - started, 2)

    # --- whole stack -----------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self.layout.make_dirs()
        with self._timed("lock"):
            self._acquire_lock()
        ports = self.layout.ports
        reserve_ports([ports.postgres, ports.redis, ports.solr, ports.ckan])
        self._truncate_logs()
        try:
            with self._timed("stale"):
                self.ckan.stop_stale()
            with self._timed("postgres"):
                self.postgres.ensure_cluster()
                self.postgres.start()
            with self._timed("solr"):
                self.solr.start(fresh=True)
            with self._timed("redis"):
                self.redis.start()
            with self._timed("config"):
                self.ckan.ensure_config()
            record = self.ckan.bootstrap_record()
            if record is None or not all(self.postgres.database_exists(t) for t in DATABASES.values()):
                with self._timed("bootstrap"):
                    record = self._bootstrap()
            self.record = record
            with self._timed("reset_databases"):
                self._reset_databases()
            with self._timed("ckan"):
                self.ckan.start()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = round(time.monotonic() - started, 2)

    def stop(self) -> None:
        """Stop every service (each even if another fails) and release the stack."""
        errors = []
        for service in (self.ckan, self.solr, self.redis, self.postgres):
            try:
                service.stop()
            except Exception as error:  # keep stopping the others
                errors.append(f"{type(service).__name__}: {error}")
        self._release_lock()
        if errors:
            raise ServiceError("some services did not stop cleanly: " + "; ".join(errors))

    def reset(self) -> None:
        """Back to the session's starting catalog: fresh databases, empty index, empty Redis."""
        with self._timed("reset"):
            self.ckan.stop()
            self._reset_databases()
            self.solr.stop()
            self.solr.start(fresh=True)
            self.redis.command("FLUSHALL")
            self.ckan.start()

    # --- pieces ------------------------------------------------------------------------------

    def _bootstrap(self) -> dict:
        sys.stderr.write("Setting up the CKAN test catalog once (database, sysadmin, token)...\n")
        pg = self.postgres
        for database, template in DATABASES.items():
            pg.psql(f'DROP DATABASE IF EXISTS "{template}";\nDROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
        roles = "".join(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'; END IF; END $$;\n"
            for role in (DB_USER, DATASTORE_READ_USER))
        pg.psql(roles + "".join(f'CREATE DATABASE "{db}" OWNER {DB_USER};\n' for db in DATABASES))
        pg.psql(self.ckan.permissions_sql.read_text(), database="datastore_default")
        record = self.ckan.bootstrap()
        for database, template in DATABASES.items():
            pg.psql(f'CREATE DATABASE "{template}" TEMPLATE "{database}" OWNER {DB_USER};')
        return record

    def _reset_databases(self) -> None:
        for database, template in DATABASES.items():
            self.postgres.copy_database(database, template, DB_USER)
        # Database-level grants are not copied with a template: apply them again.
        self.postgres.psql(self.ckan.permissions_sql.read_text(), database="datastore_default")
        # Uploaded files belong with the database that knew them.
        shutil.rmtree(self.layout.ckan_dir / "storage", ignore_errors=True)

    def _truncate_logs(self) -> None:
        """Each session's logs start empty (PostgreSQL's log belongs to its owner: left alone)."""
        for name in ("ckan.log", "solr.log", "redis.log"):
            path = self.layout.log_dir / name
            if path.exists():
                path.write_bytes(b"")

    def _acquire_lock(self) -> None:
        # The ports are the machine's, not the checkout's: one lock for every checkout.
        path = Path(tempfile.gettempdir()) / f"ckancrawl-test-catalog-{self.layout.ports.ckan}.lock"
        self._lock_file = open(path, "w")
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        announced = False
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"another test session has held {path} for {LOCK_WAIT_SECONDS:.0f} s; "
                                       "it uses the same ports and data, so wait for it or stop it") from None
                if not announced:
                    sys.stderr.write(f"Waiting for another test session that uses the CKAN catalog ({path})...\n")
                    announced = True
                time.sleep(1)
        self._lock_file.write(f"{os.getpid()}\n")
        self._lock_file.flush()

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
