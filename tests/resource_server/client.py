"""Start the resource server in a subprocess and build its URLs (tests and benchmarks)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class RunningResourceServer:
    """``tls=True`` also serves HTTPS (self-signed certificate, trusted by nothing) at ``tls_base``."""

    def __init__(self, tls: bool = False) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base = ""
        self.tls_base = ""
        self.tls = tls
        self._certificates: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> "RunningResourceServer":
        command = [sys.executable, "-m", "tests.resource_server", "--watch-stdin"]
        if self.tls:
            from tests.world.launcher import make_certificate

            self._certificates = tempfile.TemporaryDirectory(prefix="resource-server-")
            certfile, keyfile = make_certificate(Path(self._certificates.name))
            command += ["--certfile", str(certfile), "--keyfile", str(keyfile)]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the resource server did not start: {line!r}")
        self.base, *rest = line.split()[1:]
        self.tls_base = rest[0] if rest else ""
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()
        self.process = None
        if self._certificates is not None:
            self._certificates.cleanup()
            self._certificates = None

    def __enter__(self) -> "RunningResourceServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def url(self, path: str = "/file", *, tls: bool = False, **params: Any) -> str:
        """``url("/data.csv", size=100, type="text/csv")``; bytes values are percent-encoded."""
        encoded = "&".join(f"{k}={quote(v if isinstance(v, bytes) else str(v), safe='')}" for k, v in params.items())
        return f"{self.tls_base if tls else self.base}{path}" + (f"?{encoded}" if encoded else "")

    def log(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base}/_log", timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_stats", timeout=10) as answer:
            return json.loads(answer.read())

    def clear_log(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.base}/_log/clear", method="POST"), timeout=10).read()
