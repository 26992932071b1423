"""Run one tool as a subprocess against the running world and measure it.

Measured per run: wall time (process start to exit), peak memory (``ru_maxrss`` of the
child from ``wait4``, the kernel's high-water mark of the largest process in the tree,
and the largest sum of RSS over the process tree sampled from /proc every 0.1 s), and,
from the world server's own request log (reset before the run): requests received,
requests per second, the most requests any one host had in flight at once, and the
server's CPU seconds (the server shares the machine's cores with the tool).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from tests.world.launcher import RunningWorld

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The per-site limit the spider must respect.
PER_SITE_LIMIT = 4


class ToolFailed(RuntimeError):
    pass


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool: no proxy between it and loopback, no secrets, no MongoDB."""
    drop = {"MONGODB_URI", "CKAN_API_KEY", "GITHUB_TOKEN"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ")".
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant of it."""
    tree = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def tree_rss_kb(root: int) -> int:
    """The summed resident set of ``root`` and its descendants, in KiB."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live descendants."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_idle(world: RunningWorld, timeout: float = 60.0) -> None:
    """Wait until the server answers nothing: slow answers whose client has gone (timed
    out) still run their course and would count in the next run's statistics."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(host["in_flight"] for host in world.stats()["hosts"].values()):
            return
        time.sleep(0.5)


def run_measured(name: str, command: Sequence[str], world: RunningWorld, log_path: Path,
                 timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` from the project root, its output to ``log_path``; measure it."""
    wait_idle(world)
    world.reset()
    server_before = world.stats()
    busy_before = machine_busy_s()
    started_epoch = time.time()
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(command), cwd=PROJECT_ROOT, env=env or child_env(),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    tree_peak = 0
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                raise ToolFailed(f"{name} ran longer than {timeout:g} s; see {log_path}")
            tree_peak = max(tree_peak, tree_rss_kb(process.pid))
            time.sleep(0.1)
    except BaseException:
        if process.returncode is None:
            process.kill()
            os.wait4(process.pid, 0)
            process.returncode = -9
        raise
    wall = time.monotonic() - started
    busy = machine_busy_s() - busy_before
    process.returncode = os.waitstatus_to_exitcode(status)
    server = world.stats()
    cpu = usage.ru_utime + usage.ru_stime
    server_cpu = server["cpu_s"] - server_before["cpu_s"]
    hosts = server["hosts"]
    requests = server["requests"]
    in_flight = {address: host["max_in_flight"] for address, host in hosts.items()}
    return {
        "tool": name,
        "command": list(command),
        "returncode": process.returncode,
        "started_epoch": started_epoch,
        "wall_s": round(wall, 2),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1) if wall else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_tree_rss_mb_sampled": round(tree_peak / 1024, 1),
        "cpu_s": round(cpu, 2),
        "max_in_flight_per_host": max(in_flight.values(), default=0),
        "hosts_over_limit": sum(1 for value in in_flight.values() if value > PER_SITE_LIMIT),
        "max_connections_per_host": max((h["max_connections"] for h in hosts.values()), default=0),
        "connections": sum(h["connections_total"] for h in hosts.values()),
        "server_cpu_s": round(server_cpu, 2),
        # Other processes on the machine compete for the same cores: their share says
        # how much to trust the times (0 on a quiet machine).
        "machine": {
            "cores": os.cpu_count(),
            "busy_cpu_s": round(busy, 1),
            "other_processes_cpu_s": round(max(0.0, busy - cpu - server_cpu), 1),
            "other_processes_cores_avg": round(max(0.0, busy - cpu - server_cpu) / wall, 2) if wall else None,
            "load_avg_1min_at_end": os.getloadavg()[0],
        },
        "log": str(log_path),
        "_hosts": hosts,
    }
