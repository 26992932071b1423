"""A Scrapy DNS resolver for the simulated world: ``*.test`` names from a hosts file.

Install it with the process-level settings (Scrapy 2.19 reads them when the
CrawlerProcess sets up the reactor, so a spider's ``custom_settings`` cannot)::

    TWISTED_DNS_RESOLVER = "tests.world.resolver.WorldResolver"
    WORLD_HOSTS_FILE = "/path/to/hosts.json"   # or the WORLD_HOSTS_FILE variable

``DNS_RESOLVER`` still works in 2.19 but is deprecated there (a
ScrapyDeprecationWarning, an error when warnings are errors); use
``TWISTED_DNS_RESOLVER``. With a CrawlerRunner/AsyncCrawlerRunner nothing installs a
resolver: call :func:`install` on the reactor yourself.

The hosts file is a JSON object ``{"portal-7.test": "127.1.0.9", ...}``. Names:
- IP literals and ``localhost`` resolve to themselves (``localhost`` -> 127.0.0.1);
- names in the file resolve to their address (``*.test`` names, and any other name a
  test lists, such as ``data.example.de`` for a site with a country-code domain);
- a name that maps to a list of addresses answers them in turn, then the last one
  forever: a name rebound between two lookups (DNS rebinding);
- every other name fails at once with Twisted's DNSLookupError. No DNS query is ever
  sent: world tests cannot reach or depend on the real network.

Reads the settings ``WORLD_HOSTS_FILE`` (else the environment variable of that name).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

SUFFIX = ".test"


def load_hosts(path: str | os.PathLike[str] | None) -> dict[str, str | list[str]]:
    """Read a hosts file (JSON object name -> IPv4 address, or a list of them answered
    in turn); no path, no names."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a hosts file is a JSON object of name -> address")
    hosts: dict[str, str | list[str]] = {}
    for name, address in data.items():
        addresses = address if isinstance(address, list) else [address]
        if not addresses or not all(isIPAddress(str(a)) for a in addresses):
            raise ValueError(f"{path}: {name!r} maps to {address!r}, not an IPv4 address (or a list of them)")
        hosts[_normal(name)] = [str(a) for a in addresses] if isinstance(address, list) else str(address)
    return hosts


def _normal(name: str) -> str:
    return name.strip().rstrip(".").lower()


def lookup(hosts: Mapping[str, str | list[str]], name: str) -> str | None:
    """The address for ``name``, or None when it must not resolve. A list of addresses
    is answered in turn: each lookup takes the first off, the last one stays."""
    if isIPAddress(name) or isIPv6Address(name):
        return name
    normal = _normal(name)
    if normal == "localhost":
        return "127.0.0.1"
    found = hosts.get(normal)
    if isinstance(found, list):
        return found.pop(0) if len(found) > 1 else found[0]
    return found


@implementer(IResolverSimple)
class WorldResolver:
    """IResolverSimple over a fixed mapping; installed like Scrapy's own resolvers."""

    def __init__(self, reactor: Any, hosts: Mapping[str, str | list[str]]) -> None:
        self.reactor = reactor
        self.hosts = {_normal(name): list(address) if isinstance(address, list) else address
                      for name, address in hosts.items()}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> "WorldResolver":
        # Scrapy passes the CrawlerProcess itself here; only ``settings`` is used.
        path = crawler.settings.get("WORLD_HOSTS_FILE") or os.environ.get("WORLD_HOSTS_FILE")
        return cls(reactor, load_hosts(path))

    def install_on_reactor(self) -> None:
        # installResolver also wraps this resolver as the reactor's nameResolver, which
        # is what HostnameEndpoint (Scrapy's HTTP/1.1 agent) asks.
        self.reactor.installResolver(self)

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> "Deferred[str]":
        address = lookup(self.hosts, name)
        if address is None:
            return defer.fail(DNSLookupError(f"{name}: not a name of the simulated world"))
        return defer.succeed(address)


def install(reactor: Any, hosts_file: str | os.PathLike[str] | None) -> WorldResolver:
    """Install the world's resolver on a running reactor (for CrawlerRunner tests)."""
    resolver = WorldResolver(reactor, load_hosts(hosts_file))
    resolver.install_on_reactor()
    return resolver
