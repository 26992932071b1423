"""Process plumbing shared by the services: pid files, ports, waiting, stopping, errors.

Every service this package starts records its pid in a file under `.services/run/`, so
that a session killed before its teardown leaves enough behind for the next session to
find its processes and stop them (only processes whose command line is ours).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence


class ServiceError(RuntimeError):
    """A service could not be set up, started or stopped; the message says why and where to look."""


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(text[-lines:])


def run(command: Sequence[str], *, what: str, env: dict[str, str] | None = None, input: str | None = None,
        cwd: Path | None = None, timeout: float = 300) -> str:
    """Run a command to completion and return its stdout; ServiceError with its output if it fails."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, env=env, input=input,
                              cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{what} did not finish within {timeout:.0f} s: {' '.join(command)}") from None
    except FileNotFoundError:
        raise ServiceError(f"{what}: {command[0]} is not installed; run ./scripts/test to install it") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise ServiceError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n{output}")
    return done.stdout


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int, *, group: bool = False, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """Send `sig` (to the process group if `group`), wait, then SIGKILL what is left."""
    def send(signal_number: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, signal_number)
            else:
                os.kill(pid, signal_number)

    send(sig)
    if wait_until(lambda: not alive(pid), timeout):
        if group:  # workers may outlive their master by a moment
            send(signal.SIGKILL)
        return
    send(signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_stale(pid_file: Path, marker: str, *, group: bool = False) -> bool:
    """Stop the process named in `pid_file` if it is alive and its command line contains `marker`."""
    pid = read_pid(pid_file)
    stopped = False
    if pid is not None and alive(pid) and marker in command_line(pid):
        stop_pid(pid, group=group)
        stopped = True
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return stopped


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (a client socket can hold it too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listener_pids(port: int) -> set[int]:
    """Processes listening on TCP `port` on 127.0.0.1 or all addresses (from /proc)."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                address, listen_port = fields[1].split(":")
                if fields[3] == "0A" and int(listen_port, 16) == port and address in ("0100007F", "00000000"):
                    inodes.add(f"socket:[{fields[9]}]")
    except OSError:
        return set()
    pids = set()
    with os.scandir("/proc") as processes:
        for entry in processes:
            if not entry.name.isdigit():
                continue
            try:
                with os.scandir(f"/proc/{entry.name}/fd") as descriptors:
                    if any(os.readlink(fd.path) in inodes for fd in descriptors):
                        pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def stop_listeners_like(port: int, markers: Sequence[str], sig: int = signal.SIGTERM) -> list[int]:
    """Stop the processes listening on `port` whose command line has every marker.

    For services left behind by a killed session of another checkout (their pid files
    are not ours); called only while holding the catalog lock, so no live session owns them.
    """
    stopped = []
    for pid in sorted(listener_pids(port)):
        line = command_line(pid)
        if all(marker in line for marker in markers):
            try:
                leads_group = os.getpgid(pid) == pid
            except ProcessLookupError:
                continue
            stop_pid(pid, group=leads_group, sig=sig)
            stopped.append(pid)
    return stopped


def require_free_port(port: int, service: str, wait: float = 70,
                      stale_markers: Sequence[str] = (), stale_signal: int = signal.SIGTERM) -> None:
    """Fail unless `port` can be listened on: stop a stale service of ours that holds it
    (`stale_markers`), else wait for a client socket that holds it to close (a TIME_WAIT
    socket of a client that did not set SO_REUSEADDR holds it for 60 s)."""
    if port_bindable(port):
        return
    if stale_markers and stop_listeners_like(port, stale_markers, stale_signal) and \
            wait_until(lambda: port_bindable(port), 10, interval=0.2):
        return
    sys.stderr.write(f"Waiting up to {wait:.0f} s for port {port} ({service}) to be released...\n")
    if wait_until(lambda: port_bindable(port), wait, interval=0.5):
        return
    raise ServiceError(f"port {port} (for {service}) is used by another program; "
                       f"stop it (see `ss -tnp 'sport = :{port}'`) and run the tests again")


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def reserve_ports(ports: Sequence[int]) -> bool:
    """Ask the kernel not to hand these ports out as ephemeral ports (best effort, root only).

    The services' fixed ports lie in Linux's ephemeral range (32768-60999): without this,
    any client socket or `bind(port=0)` on the machine (the simulated world binds
    hundreds) can take one while a service is (re)starting.
    """
    try:
        current = RESERVED_PORTS.read_text().strip()
    except OSError:
        return False
    covered: set[int] = set()
    for part in filter(None, current.split(",")):
        low, _, high = part.partition("-")
        covered.update(range(int(low), int(high or low) + 1))
    missing = [p for p in ports if p not in covered]
    if not missing:
        return True
    try:
        RESERVED_PORTS.write_text(",".join(filter(None, [current, *map(str, missing)])))
    except OSError:
        return False
    return True


def http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_http(url: str, *, timeout: float, service: str, process: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    """Wait until `url` answers 200; fail early if `process` exits, with the log's tail."""
    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{service} exited with code {process.returncode} while starting; "
                               + (log_tail(log) if log else ""))
        return http_ok(url)

    if not wait_until(ready, timeout, interval=0.1):
        raise ServiceError(f"{service} did not answer {url} within {timeout:.0f} s; "
                           + (log_tail(log) if log else ""))
