"""Start the world's server as a subprocess and describe what it serves.

::

    from tests.world import spec
    from tests.world.launcher import start_world

    pool = spec.AddressPool()
    with start_world([spec.ckan_portal(pool), spec.redirect_loop(pool)], workdir) as world:
        for portal in world.portals:
            portal.listed_url, portal.truth      # ports filled in
        world.stats()                            # the server's request log
        world.scrapy_settings()                  # resolver settings for a crawl
        world.judge(items)                       # portal name -> what the items get wrong

``start_world`` writes the spec (and a self-signed certificate when a portal needs the
TLS port) into ``workdir``, starts ``python -m tests.world.server``, waits for its ready
line, and gives a :class:`RunningWorld`. Stopping closes the server's stdin (it exits at
once), then terminates, then kills.
"""
from __future__ import annotations

import datetime
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from tests.world.spec import PortalSpec, Truth, fill_ports, hosts_mapping, portal_to_dict, resolved_truth

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: No proxy from the environment may stand between the tests and loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class WorldPortal:
    """A portal of a running world: its spec, and its listed URL and truth with ports."""

    spec: PortalSpec
    listed_url: str
    truth: Truth

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def preset(self) -> str:
        return self.spec.preset

    @property
    def addresses(self) -> list[str]:
        return [h.address for h in self.spec.hosts]


class WorldError(RuntimeError):
    pass


class RunningWorld:
    """A started world. Use as a context manager, or call :meth:`stop`."""

    def __init__(self, portals: list[PortalSpec], workdir: Path, process: subprocess.Popen,
                 port: int, tls_port: int | None, certfile: Path | None) -> None:
        self.workdir = workdir
        self.process = process
        self.port = port
        self.tls_port = tls_port
        self.certfile = certfile
        self.portals = [
            WorldPortal(p, fill_ports(p.listed_url, port, tls_port), resolved_truth(p.truth, port, tls_port))
            for p in portals
        ]
        self._by_name = {p.name: p for p in self.portals}
        self.hosts_file = workdir / "hosts.json"
        self.hosts_file.write_text(json.dumps(hosts_mapping(portals), indent=1), encoding="utf-8")
        self.control_url = f"http://127.0.0.1:{port}/__world__"

    # -- portals ----------------------------------------------------------------------

    def portal(self, name: str) -> WorldPortal:
        return self._by_name[name]

    def by_preset(self, preset: str) -> list[WorldPortal]:
        return [p for p in self.portals if p.preset == preset]

    def url(self, template: str) -> str:
        """Fill ``{port}`` / ``{tls_port}`` in a URL template."""
        return fill_ports(template, self.port, self.tls_port) or ""

    def write_urls_file(self, path: str | os.PathLike[str] | None = None,
                        portals: Iterable[WorldPortal] | None = None) -> Path:
        """The listed URLs, one per line (for ``scrapy crawl sites -a urls=PATH``)."""
        target = Path(path) if path else self.workdir / "urls.txt"
        chosen = list(portals) if portals is not None else self.portals
        target.write_text("".join(p.listed_url + "\n" for p in chosen), encoding="utf-8")
        return target

    def judge(self, items: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
        """Compare crawled items (dicts with ``listed_url``) with the truth.

        Returns portal name -> what is wrong (see Truth.mismatches), only for portals
        with something wrong; a portal without an item gets ``["no item"]``.
        """
        by_url = {item.get("listed_url"): item for item in items}
        verdict = {}
        for portal in self.portals:
            item = by_url.get(portal.listed_url)
            problems = ["no item"] if item is None else portal.truth.mismatches(item)
            if problems:
                verdict[portal.name] = problems
        return verdict

    def scrapy_settings(self) -> dict[str, Any]:
        """Process-level settings that make Scrapy resolve the world's ``*.test`` names."""
        return {
            "TWISTED_DNS_RESOLVER": "tests.world.resolver.WorldResolver",
            "WORLD_HOSTS_FILE": str(self.hosts_file),
        }

    # -- the request log ----------------------------------------------------------------

    def _control(self, path: str, method: str = "GET") -> dict[str, Any]:
        request = urllib.request.Request(self.control_url + path, method=method, data=b"" if method == "POST" else None)
        with _OPENER.open(request, timeout=30) as answer:
            return json.loads(answer.read())

    def stats(self, host: str | None = None) -> dict[str, Any]:
        """The server's statistics (see tests.world.server); one host's with ``host``."""
        return self._control("/stats" + (f"?host={host}" if host else ""))

    def portal_stats(self, portal: WorldPortal | str) -> dict[str, dict[str, Any]]:
        """address -> statistics, for each host of a portal."""
        chosen = self.portal(portal) if isinstance(portal, str) else portal
        hosts = self.stats()["hosts"]
        return {address: hosts[address] for address in chosen.addresses}

    def max_in_flight(self) -> int:
        """The most requests any one host had in flight at once."""
        return max((h["max_in_flight"] for h in self.stats()["hosts"].values()), default=0)

    def change_datasets(self, portal: WorldPortal | str, *, remove: Iterable[int] = (), add: Iterable[int] = (),
                        modify: Iterable[int] = (), restore: Iterable[int] = ()) -> int:
        """Remove, add, modify and restore datasets of a portal by index (see
        tests.world.datasets.DatasetStore.apply); returns how many it has."""
        chosen = self.portal(portal) if isinstance(portal, str) else portal
        host = next(h.address for h in chosen.spec.hosts if h.ckan is not None and h.ckan.datasets is not None)
        body = json.dumps({"host": host, "remove": list(remove), "add": list(add), "modify": list(modify),
                           "restore": list(restore)}).encode()
        request = urllib.request.Request(self.control_url + "/datasets", data=body, method="POST")
        with _OPENER.open(request, timeout=30) as answer:
            return json.loads(answer.read())["datasets"]

    def reset(self) -> None:
        """Zero the statistics and re-arm the 429 counters."""
        self._control("/reset", method="POST")

    # -- lifetime -------------------------------------------------------------------------

    def stop(self) -> None:
        process = self.process
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
        for stream in (process.stdout,):
            if stream:
                stream.close()

    def __enter__(self) -> "RunningWorld":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed EC certificate for the TLS port (test only, trusted by nothing)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ckancrawl simulated world")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("*.test"), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "world-cert.pem", directory / "world-key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def start_world(portals: list[PortalSpec], workdir: str | os.PathLike[str] | None = None, *,
                port: int = 0, tls_port: int = 0, ready_timeout: float = 120.0) -> RunningWorld:
    """Write the spec, start the server, wait until every socket is bound."""
    names = [p.name for p in portals]
    if len(set(names)) != len(names):
        raise WorldError("two portals share a name")
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ckancrawl-world-"))
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"port": port, "tls_port": tls_port,
                              "portals": [portal_to_dict(p) for p in portals]}
    certfile = None
    if any(h.tls for p in portals for h in p.hosts):
        certfile, keyfile = make_certificate(directory)
        config.update(certfile=str(certfile), keyfile=str(keyfile))
    spec_path = directory / "world.json"
    spec_path.write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    with open(directory / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.world.server", str(spec_path), "--watch-stdin"],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
    try:
        ready = _read_ready_line(process, ready_timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return RunningWorld(portals, directory, process, ready["port"], ready.get("tls_port"), certfile)


def _read_ready_line(process: subprocess.Popen, timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorldError(f"the world server was not ready after {timeout:g} s")
            if selector.select(min(left, 0.5)):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise WorldError(f"the world server exited ({process.wait()}); see its server.log")
                buffer += chunk
            elif process.poll() is not None:
                raise WorldError(f"the world server exited ({process.returncode}); see its server.log")
    finally:
        selector.close()
    ready = json.loads(buffer.split(b"\n", 1)[0])
    if not ready.get("ready"):
        raise WorldError(f"unexpected first line from the world server: {ready!r}")
    return ready
