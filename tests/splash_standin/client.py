"""Start and stop the Splash stand-in in a subprocess (tests use this)."""
from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: No proxy from the environment may stand between the tests and loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SplashStandIn:
    def __init__(self, max_timeout: float = 90.0, slots: int = 20, chromium: str = "/usr/bin/chromium") -> None:
        self.options = ["--max-timeout", str(max_timeout), "--slots", str(slots), "--chromium", chromium]
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> "SplashStandIn":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.splash_standin", "--watch-stdin", *self.options],
            cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        try:
            while not line.endswith(b"\n"):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the Splash stand-in did not start: {line!r}")
                if selector.select(0.2):
                    line += self.process.stdout.read1(1024)
        finally:
            selector.close()
        text = line.decode().strip()
        if not text.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the Splash stand-in did not start: {text!r}")
        self.url = text.split(" ", 1)[1]
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                if process.stdin:
                    process.stdin.close()
                process.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process.stdout:
            process.stdout.close()

    def requests(self) -> list[dict[str, Any]]:
        """The arguments of every render request the stand-in received."""
        with _OPENER.open(f"{self.url}/_standin/requests", timeout=10) as answer:
            return json.loads(answer.read())

    def __enter__(self) -> "SplashStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
