"""Where the test services keep their files, and which loopback ports they listen on.

Everything lives under $SERVICES_DIR (set by scripts/lib/venv.sh; default
<project>/.services, git-ignored): the CKAN virtualenv, the PostgreSQL cluster, the
CKAN config, logs and pid files.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Ports:
    postgres: int = 55432
    redis: int = 56379
    solr: int = 58983
    ckan: int = 55000


@dataclasses.dataclass(frozen=True)
class Layout:
    project_root: Path
    services_dir: Path
    ports: Ports = Ports()

    @classmethod
    def from_env(cls) -> Layout:
        services = os.environ.get("CKANCRAWL_SERVICES_DIR") or os.environ.get("SERVICES_DIR")
        return cls(PROJECT_ROOT, Path(services).resolve() if services else PROJECT_ROOT / ".services")

    @property
    def ckan_venv(self) -> Path:
        return self.services_dir / "ckan-venv"

    @property
    def run_dir(self) -> Path:
        """pid files of running services"""
        return self.services_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.services_dir / "logs"

    @property
    def pg_data(self) -> Path:
        return self.services_dir / "pg"

    @property
    def ckan_dir(self) -> Path:
        """ckan.ini, the bootstrap record, the datastore permissions SQL, file storage"""
        return self.services_dir / "ckan"

    @property
    def solr_dir(self) -> Path:
        return self.services_dir / "solr"

    @property
    def ckan_sources(self) -> Path:
        """this project's CKAN files: scheming YAMLs, wsgi.py, bootstrap.py"""
        return self.project_root / "tests" / "ckan"

    def ckan_solr_schema(self) -> Path:
        """CKAN's own Solr schema.xml, from the CKAN virtualenv."""
        found = sorted(self.ckan_venv.glob("lib/python3*/site-packages/ckan/config/solr/schema.xml"))
        if not found:
            from .process import ServiceError
            raise ServiceError(f"CKAN is not installed in {self.ckan_venv}; run ./scripts/test, which installs it")
        return found[0]

    def make_dirs(self) -> None:
        for directory in (self.services_dir, self.run_dir, self.log_dir, self.ckan_dir, self.solr_dir):
            directory.mkdir(parents=True, exist_ok=True)
