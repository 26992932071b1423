"""PostgreSQL 15 for the test catalog: a private cluster in .services/pg on 127.0.0.1.

The cluster runs as the `postgres` user when we are root (PostgreSQL refuses to run as
root), with its socket in /tmp (the postgres user cannot write into a root-owned
project directory), trust authentication on loopback and fsync off: it holds only
throw-away test data. A cluster left running by a killed session is reused.
"""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from .layout import Layout
from .process import ServiceError, log_tail, require_free_port, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.port = layout.ports.postgres
        self.data = layout.pg_data
        self.log = layout.log_dir / "postgres.log"
        self._stamp = layout.services_dir / "pg.initialised"

    def _as_owner(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def _pg_ctl(self, *args: str) -> list[str]:
        return self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args])

    def ensure_cluster(self) -> bool:
        """Create the cluster unless a complete one exists; True when it was created."""
        if self._stamp.exists() and (self.data / "PG_VERSION").exists():
            return False
        if not (PG_BIN / "initdb").exists():
            raise ServiceError(f"PostgreSQL 15 is not installed ({PG_BIN}); run ./scripts/test, which installs it")
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        self.data.chmod(0o700)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(self.log, "postgres", "postgres")
        run(self._as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                            "-E", "UTF8", "--locale=C.UTF-8"]), what="initdb")
        self._stamp.write_text("PostgreSQL 15\n")
        return True

    def is_running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        try:
            run(self._pg_ctl("status"), what="pg_ctl status")
        except ServiceError:
            return False
        return True

    def start(self) -> None:
        if self.is_running():
            return
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients to leave).
        require_free_port(self.port, "PostgreSQL", stale_markers=("postgres", f"-p {self.port}", "-k /tmp"),
                          stale_signal=signal.SIGINT)
        options = (f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        try:
            run(self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start"), what="pg_ctl start")
        except ServiceError as error:
            raise ServiceError(f"{error}\n{log_tail(self.log)}") from None

    def stop(self) -> None:
        if self.is_running():
            run(self._pg_ctl("-m", "fast", "-w", "stop"), what="pg_ctl stop")

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser; the rows come back as unaligned text."""
        return run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                    "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"], input=sql, what=f"psql on {database}")

    def database_exists(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1"

    def copy_database(self, name: str, template: str, owner: str) -> None:
        """(Re)create database `name` as a copy of `template` (whose connections are ended)."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\n'
                  f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER "{owner}";')
