"""Redis for the test catalog: 127.0.0.1 only, no persistence, started empty each session."""
from __future__ import annotations

import socket
from pathlib import Path

from .layout import Layout
from .process import ServiceError, log_tail, read_pid, require_free_port, run, stop_pid, stop_stale, wait_until


class Redis:
    def __init__(self, layout: Layout):
        self.port = layout.ports.redis
        self.pid_file = layout.run_dir / "redis.pid"
        self.log = layout.log_dir / "redis.log"
        self.workdir = layout.services_dir / "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> str:
        """Send one command (inline protocol) and return the first line of the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall((" ".join(words) + "\r\n").encode())
            return connection.makefile("rb").readline().decode().strip()

    def is_running(self) -> bool:
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def start(self) -> None:
        stop_stale(self.pid_file, f"127.0.0.1:{self.port}")
        require_free_port(self.port, "Redis", stale_markers=(f"redis-server 127.0.0.1:{self.port}",))
        self.workdir.mkdir(parents=True, exist_ok=True)
        run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--pidfile", str(self.pid_file), "--logfile", str(self.log),
             "--dir", str(self.workdir)], what="redis-server")
        if not wait_until(self.is_running, 10):
            raise ServiceError(f"Redis did not answer PING on port {self.port}; {log_tail(self.log)}")

    def stop(self) -> None:
        pid = read_pid(self.pid_file)
        if pid is not None:
            stop_pid(pid)
        Path(self.pid_file).unlink(missing_ok=True)
