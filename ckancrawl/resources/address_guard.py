"""Which addresses a resource download may connect to.

Resource URLs come from portals, that is from anyone: a URL that points at
``http://169.254.169.254/latest/meta-data/`` or at a service on the crawler's own
network must not be fetched. :func:`refusal` names what an address is when it is not a
public one: loopback, private, link-local, multicast, unspecified, shared (carrier-grade
NAT), reserved, not globally routable, or a cloud metadata service (also those with a
public-looking address, such as Azure's 168.63.129.16). IPv4 addresses embedded in IPv6
(``::ffff:10.0.0.1``, 6to4, Teredo, NAT64) are judged by their IPv4 address.

The download handler (:mod:`ckancrawl.resources.download_handler`) resolves each host
itself, refuses it when *any* of its addresses is refused, and connects to the address
it checked, so a DNS answer that changes between the check and the connection
(rebinding) cannot slip through. Every redirect hop is a new request and is checked the
same way.

``RESOURCE_ALLOW_PRIVATE`` (see :meth:`AddressPolicy.from_setting`): ``False`` (the
default) allows public addresses only; ``True`` also every non-public address except
the metadata services; a list of networks (``["127.0.0.1/32", "::1/128"]``, or the same
as a comma-separated string) allows exactly those besides public addresses, metadata
services included if listed.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_SERVICES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata service (AWS, GCP, Azure, OpenStack...)",
    ipaddress.ip_address("169.254.170.2"): "the AWS ECS task metadata service",
    ipaddress.ip_address("fd00:ec2::254"): "the AWS metadata service (IPv6)",
    ipaddress.ip_address("100.100.100.200"): "the Alibaba Cloud metadata service",
    ipaddress.ip_address("168.63.129.16"): "the Azure platform wire server",
}
METADATA = "metadata service"
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


def classify(address: IPAddress) -> str | None:
    """What a non-public address is (``"loopback"``, ``"private"``...); None if public."""
    address = embedded_ipv4(address) or address
    if address in METADATA_SERVICES:
        return METADATA
    for test, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(address, test):
            return name
    if address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def describe(address: IPAddress, kind: str) -> str:
    """``"10.0.0.1, a private address"``; an embedded IPv4 address is named too."""
    inner = embedded_ipv4(address)
    shown = f"{address} ({inner})" if inner else str(address)
    if kind == METADATA:
        return f"{shown}, {METADATA_SERVICES[inner or address]}"
    article = "an" if kind[:1] in "aeiou" else "a"
    return f"{shown}, {article} {kind} address"


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_setting(cls, value: Any) -> AddressPolicy:
        """Read RESOURCE_ALLOW_PRIVATE: a bool, "true"/"false", or networks."""
        if value is None or value is False or value == "":
            return cls()
        if value is True:
            return cls(allow_private=True)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return cls(allow_private=True)
            if lowered in ("0", "false", "no", "off", "none"):
                return cls()
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple, set, frozenset)):
            try:
                networks = tuple(ipaddress.ip_network(str(part).strip(), strict=False) for part in value)
            except ValueError as error:
                raise ValueError(f"RESOURCE_ALLOW_PRIVATE: {error}") from None
            return cls(allowed_networks=networks)
        raise ValueError(
            f"RESOURCE_ALLOW_PRIVATE must be true, false or a list of networks, not {value!r}"
        )

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why ``address`` must not be connected to; None when it may be."""
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
        kind = classify(ip)
        if kind is None:
            return None
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return None
        if self.allow_private and kind != METADATA:
            return None
        return describe(ip, kind)
