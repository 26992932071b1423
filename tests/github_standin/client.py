"""Start and drive a GitHub stand-in in a subprocess (tests and benchmarks use this)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class GitHubStandIn:
    def __init__(self, repos: list[dict[str, Any]] | None = None, generate: int | None = None, seed: int = 1,
                 tokens: tuple[str, ...] = (), latency: float = 0.0, **options: Any) -> None:
        self.repos = repos or []
        self.generate = generate
        self.seed = seed
        self.tokens = tokens
        self.latency = latency
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self._world_file: str | None = None

    def start(self) -> "GitHubStandIn":
        handle, self._world_file = tempfile.mkstemp(prefix="github-world-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump({"repos": self.repos}, out)
        command = [sys.executable, "-m", "tests.github_standin", "--world", self._world_file,
                   "--latency", str(self.latency), "--tokens", ",".join(self.tokens)]
        if self.generate:
            command += ["--generate", str(self.generate), "--seed", str(self.seed)]
        for name, value in self.options.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the GitHub stand-in did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None
        if self._world_file:
            Path(self._world_file).unlink(missing_ok=True)
            self._world_file = None

    def __enter__(self) -> "GitHubStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(f"{self.url}/_standin/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def log(self) -> list[dict[str, Any]]:
        return self.control("GET", "log")["entries"]

    def clear_log(self) -> None:
        self.control("POST", "log/clear", {})

    def add_faults(self, *rules: dict[str, Any]) -> None:
        self.control("POST", "faults", list(rules))

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def set_budget(self, token: str | None, resource: str, remaining: int, reset_in: float | None = None) -> None:
        self.control("POST", "budget", {"token": token, "resource": resource, "remaining": remaining, "reset_in": reset_in})

    def clear_budgets(self) -> None:
        self.control("POST", "budgets/clear", {})

    def budgets(self) -> dict[str, Any]:
        return self.control("GET", "budgets")

    def update_repo(self, full_name: str, **changes: Any) -> dict[str, Any]:
        return self.control("POST", "repos", {"full_name": full_name, "changes": changes})

    def set_latency(self, seconds: float) -> None:
        self.control("POST", "config", {"latency": seconds})
