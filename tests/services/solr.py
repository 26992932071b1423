"""The Solr stand-in (tests/solr_standin) as a process of its own, as CKAN sees a real Solr.

Its index is persisted to .services/solr/index.jsonl, so stop() and start() within a
session keep it (as a real Solr core would); start(fresh=True) begins empty.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from .layout import Layout
from .process import require_free_port, stop_pid, stop_stale, wait_for_http

MARKER = "tests.solr_standin"


class SolrStandinService:
    def __init__(self, layout: Layout, python: str = sys.executable):
        self.layout = layout
        self.python = python
        self.port = layout.ports.solr
        self.pid_file = layout.run_dir / "solr.pid"
        self.log = layout.log_dir / "solr.log"
        self.data = layout.solr_dir / "index.jsonl"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The core URL, as CKAN's `solr_url`."""
        return f"http://127.0.0.1:{self.port}/solr/ckan"

    def start(self, fresh: bool = False) -> None:
        stop_stale(self.pid_file, MARKER)
        if fresh:
            Path(self.data).unlink(missing_ok=True)
        require_free_port(self.port, "the Solr stand-in", stale_markers=(MARKER, f"--port {self.port}"))
        self.data.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [self.python, "-m", MARKER, "--schema", str(self.layout.ckan_solr_schema()),
                 "--port", str(self.port), "--data", str(self.data)],
                cwd=self.layout.project_root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.pid_file.write_text(f"{self._process.pid}\n")
        wait_for_http(f"{self.url}/admin/ping", timeout=20, service="the Solr stand-in",
                      process=self._process, log=self.log)

    def stop(self) -> None:
        if self._process is not None:
            stop_pid(self._process.pid)
            self._process.wait()
            self._process = None
        stop_stale(self.pid_file, MARKER)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stats(self) -> dict:
        """Requests per handler and index sizes (the stand-in's /standin/stats)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/standin/stats", timeout=5) as response:
            return json.load(response)

    def inject_fault(self, handler: str = "*", status: int = 503, count: int = 1, delay: float = 0) -> None:
        """Make the next `count` requests to `handler` fail with `status` (after `delay` s)."""
        body = json.dumps({"handler": handler, "status": status, "count": count, "delay": delay}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/standin/faults", data=body, method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def clear_faults(self) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/standin/faults", method="DELETE")
        urllib.request.urlopen(request, timeout=5).close()
