"""Refuse requests to loopback, private, link-local and metadata-service addresses.

Every URL the spiders fetch from a site or portal came from data (the catalog, a
portal's page, a redirect): a catalog entry or a redirect pointing at
``http://169.254.169.254/`` or at a service on the crawler's own network must not be
fetched. This downloader middleware resolves each request's host with the reactor's
resolver (Scrapy's cached one, or TWISTED_DNS_RESOLVER's) and refuses the request when
any of its addresses is not public, with the rules of
:mod:`ckancrawl.resources.address_guard`. Redirects are new requests and pass here
again, so a redirect to a private address is refused too.

Not checked: the operator's own configuration, which is not portal data: the catalog
(CATALOG_URL or ``-a catalog=``), GITHUB_API_URL, GITHUB_GRAPHQL_URL, GEOCODER_URL and
SPLASH_URL (their host and port exactly; a redirect from them to elsewhere is checked),
and resource downloads, which the resource download handler guards itself, connecting
to the address it checked (RESOURCE_ALLOW_PRIVATE).

A name rebound between the check and the connection (DNS rebinding) cannot slip
through: once the engine starts, the reactor's name resolver (the one Scrapy's
connections ask) is wrapped so that every address the policy refuses is left out of
every answer, except for the operator's hosts above and the proxies in the environment.
A connection to a name with nothing left fails, and the request is recorded as
``blocked`` ("... resolved to 10.0.0.5 when connecting, after it was checked (DNS
rebinding?); nothing was sent"). The address a response came from
(``response.ip_address``) is checked as well, for any other path.

A refused request fails with :class:`~ckancrawl.failures.BlockedAddressRequest`
(an IgnoreRequest, never retried; described as a FetchError of kind ``blocked``: "blocked: portal.example resolves to 10.0.0.5, a private address; set
ALLOW_PRIVATE_ADDRESSES to allow it"), recorded as the site's or portal's failure.

Settings:
- ALLOW_PRIVATE_ADDRESSES (False; also read from the environment variable of that
  name): True allows every non-public address except the metadata services; a list
  of networks (or a comma-separated string) allows exactly those.

Stats: ``address_guard/checked`` (hosts resolved and checked), ``address_guard/blocked``
and ``address_guard/blocked/<kind>`` (loopback, private, metadata service...),
``address_guard/left_out`` (refused addresses taken out of a name's answer at
connection time), ``address_guard/rebound`` (requests refused for that, or for an
answer from a refused address).
"""
from __future__ import annotations

import ipaddress
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import CannotResolveHostError
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IResolutionReceiver
from zope.interface import implementer

from ckancrawl.failures import BlockedAddressRequest
from ckancrawl.resources.address_guard import AddressPolicy, classify
from ckancrawl.resources.streaming import FETCH_META

#: Settings that name operator-configured services (exempt from the check).
OPERATOR_URL_SETTINGS = ("CATALOG_URL", "GITHUB_API_URL", "GITHUB_GRAPHQL_URL", "GEOCODER_URL", "SPLASH_URL")


def _origin(url: str | None) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url or "")
        if not parts.hostname:
            return None
        return parts.scheme, parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def _kind(address: str) -> str:
    """The stats name of a refused address (loopback, private, metadata service...)."""
    return classify(ipaddress.ip_address(address.split("%", 1)[0])) or "not public"


class AddressGuardMiddleware:
    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.stats = crawler.stats
        try:
            self.policy = AddressPolicy.from_setting(crawler.settings.get("ALLOW_PRIVATE_ADDRESSES", False))
        except ValueError as error:
            raise ValueError(str(error).replace("RESOURCE_ALLOW_PRIVATE", "ALLOW_PRIVATE_ADDRESSES")) from None
        self.exempt = {o for o in (_origin(crawler.settings.get(name)) for name in OPERATOR_URL_SETTINGS) if o}
        #: host -> (kind, refusal) or None (allowed); the resolver caches too, this
        #: saves the lookup.
        self._verdicts: dict[str, tuple[str, str] | None] = {}
        self._catalog_read = False
        #: Hosts whose answer lost a refused address at connection time -> (kind, refusal).
        self._left_out: dict[str, tuple[str, str]] = {}
        self._proxy_hosts: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> AddressGuardMiddleware:
        guard = cls(crawler)
        crawler.signals.connect(guard._guard_the_resolver, signal=signals.engine_started)
        return guard

    # -- at connection time -----------------------------------------------------------

    @property
    def _restricting(self) -> bool:
        return not (self.policy.allow_private and not self.policy.allowed_networks)

    def _guard_the_resolver(self) -> None:
        """Wrap the reactor's name resolver (installed by Scrapy when the crawl starts)."""
        from twisted.internet import reactor

        if not self._restricting or isinstance(reactor.nameResolver, GuardedNameResolver):
            return
        reactor.installNameResolver(GuardedNameResolver(reactor.nameResolver, self))
        self._proxy_hosts |= {
            (parts.hostname or "").lower() for parts in map(urlsplit, urllib.request.getproxies().values())
        }

    def exempt_host(self, host: str, port: int) -> bool:
        """Whether a connection to ``host:port`` is the operator's (never filtered)."""
        self._exempt_the_catalog()
        host = host.lower().strip("[]")
        return host in self._proxy_hosts or any(h == host and p == port for _, h, p in self.exempt)

    def left_out(self, host: str, address: str, refusal: str) -> None:
        """``address`` (refused) was taken out of the answer for ``host`` at connection time."""
        self.stats.inc_value("address_guard/left_out")
        self._left_out[host.lower()] = (_kind(address), refusal)

    def _refuse(self, kind: str, reason: str, request: Request, rebound: bool = False) -> None:
        """Count a refused request and fail it with ``reason`` and the advice."""
        self.stats.inc_value("address_guard/blocked")
        self.stats.inc_value(f"address_guard/blocked/{kind}")
        if rebound:
            self.stats.inc_value("address_guard/rebound")
        raise BlockedAddressRequest(f"{reason} for {request.url}; set ALLOW_PRIVATE_ADDRESSES to allow it")

    def _exempt_the_catalog(self) -> None:
        """The spider's catalog (``-a catalog=``) is operator configuration too (read once,
        when the spider is there)."""
        if self._catalog_read:
            return
        self._catalog_read = True
        spider = self.crawler.spider
        try:
            catalog = getattr(spider, "catalog_url", None)
        except ValueError:  # a wrong catalog URL fails in the spider, with its own message
            catalog = None
        origin = _origin(catalog)
        if origin:
            self.exempt.add(origin)

    def _checked_origin(self, request: Request) -> tuple[str, str, int] | None:
        """The request's origin when this middleware checks it, else None."""
        if request.meta.get(FETCH_META) or not self._restricting:
            return None
        self._exempt_the_catalog()
        origin = _origin(request.url)
        return None if origin is None or origin in self.exempt else origin

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        origin = self._checked_origin(request)
        if origin is None or not isinstance(exception, (DNSLookupError, CannotResolveHostError)):
            return None
        left_out = self._left_out.get(origin[1])
        if left_out is None:
            return None
        kind, refusal = left_out
        self._refuse(kind, f"{origin[1]} resolved to {refusal} when connecting, after it was checked "
                           "(DNS rebinding?); nothing was sent,", request, rebound=True)

    def process_response(self, request: Request, response: Any, spider: Any = None) -> Any:
        origin = self._checked_origin(request)
        peer = getattr(response, "ip_address", None)
        if origin is None or peer is None or request.meta.get("proxy"):
            # Through a proxy, the peer is the proxy: the name was resolved out of sight.
            return response
        refusal = self.policy.refusal(str(peer))
        if refusal is None:
            return response
        self._refuse(_kind(str(peer)), f"{origin[1]} answered from {refusal} after it was checked "
                                       "(DNS rebinding?); its answer was thrown away,", request, rebound=True)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        proxy = request.meta.get("proxy")
        if proxy:  # the operator's too: the connection goes there, not to the site
            self._proxy_hosts.add((urlsplit(proxy).hostname or "").lower())
        origin = self._checked_origin(request)
        if origin is None:
            return None
        host = origin[1]
        if host not in self._verdicts:
            self._verdicts[host] = await self._judge(host)
        verdict = self._verdicts[host]
        if verdict is not None:
            self._refuse(*verdict, request)
        return None

    async def _judge(self, host: str) -> tuple[str, str] | None:
        self.stats.inc_value("address_guard/checked")
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal.split("%", 1)[0])
            addresses = [literal]
        except ValueError:
            from twisted.internet import reactor

            try:
                addresses = [await maybe_deferred_to_future(reactor.resolve(host))]
            except Exception:  # the download itself reports a name that does not resolve
                return None
        for address in addresses:
            refusal = self.policy.refusal(address)
            if refusal is not None:
                return _kind(address), f"{host} resolves to {refusal}" if address != literal else refusal
        return None


@implementer(IHostnameResolver)
class GuardedNameResolver:
    """The reactor's name resolver, with the addresses the guard refuses left out."""

    def __init__(self, unguarded: Any, guard: AddressGuardMiddleware) -> None:
        #: The resolver it wraps (the resource download handler applies its own policy).
        self.unguarded = unguarded
        self.guard = guard

    def resolveHostName(self, resolutionReceiver: Any, hostName: str, portNumber: int = 0,
                        addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:
        receiver = resolutionReceiver
        if not self.guard.exempt_host(hostName, portNumber):
            receiver = _WithoutRefused(resolutionReceiver, hostName, self.guard)
        return self.unguarded.resolveHostName(receiver, hostName, portNumber, addressTypes, transportSemantics)


@implementer(IResolutionReceiver)
class _WithoutRefused:
    def __init__(self, receiver: Any, host: str, guard: AddressGuardMiddleware) -> None:
        self.receiver = receiver
        self.host = host
        self.guard = guard

    def resolutionBegan(self, resolution: Any) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        refusal = self.guard.policy.refusal(address.host)
        if refusal is None:
            self.receiver.addressResolved(address)
        else:
            self.guard.left_out(self.host, address.host, refusal)

    def resolutionComplete(self) -> None:
        self.receiver.resolutionComplete()
