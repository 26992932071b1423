"""Portal specs for the simulated world, the named presets, and their ground truth.

A world is a list of :class:`PortalSpec`. A portal is what a catalog lists: one
``listed_url`` and the :class:`HostSpec` it involves (the listed host, and for
redirects the hosts it leads to). Each host owns one loopback address ``127.A.B.C``
(optionally also a ``*.test`` host name, resolved by :mod:`tests.world.resolver`). A
host plays one role: a CKAN portal (:class:`CkanSpec`), a site that is not CKAN, a
fixed HTTP status everywhere, or a redirect.

URLs in specs and truths are templates: ``{port}`` and ``{tls_port}`` are filled in
once the server has bound its ports (:func:`fill_ports`; the launcher does it).

Each portal carries its :class:`Truth`: what a correct crawler must record. Field names
follow :class:`ckancrawl.items.SiteSnapshot`; unknown is ``None``. Failures are
:class:`Reason` values whose kinds are those of :mod:`ckancrawl.failures` (see
``REASON_KINDS``); :meth:`Truth.mismatches` compares a crawled item with the truth.

Every spec is plain data (dataclasses of str/int/float/bool/list/dict) and round-trips
through JSON with :func:`portal_to_dict` / :func:`portal_from_dict`.

What the CKAN side does per version is in :mod:`tests.world.ckan_api`; the truth here
assumes a crawler that:
- finds the API from the listed URL (following redirects) at ``<root>/api/3/action/``
  then ``<root>/api/action/``;
- counts datasets with ``package_search?rows=0`` and falls back to ``package_list``;
- counts organizations and groups exactly above the list cap (paging that works on
  every version exists: see :func:`tests.world.ckan_api.list_rules`);
- retries a 429 at least ``rate_limit_first`` times, honouring ``Retry-After: 1``;
- gives up on an answer after at most ``ASSUMED_TIMEOUT_S`` seconds (the slow presets
  wait longer than that by default).
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Mapping

from tests.world import ckan_api
from tests.world.datasets import SHAPES, DatasetsSpec

#: The slow presets assume the crawler times out before this many seconds.
ASSUMED_TIMEOUT_S = 15.0
#: Default delay of the slow presets: past ASSUMED_TIMEOUT_S.
SLOW_DELAY_S = 20.0

# -- reasons -------------------------------------------------------------------------

# Failure kinds, the vocabulary of ckancrawl/failures.py (KINDS).
TIMEOUT = "timeout"
DNS = "dns"
TLS = "tls"
CONNECTION_REFUSED = "connection refused"
CONNECTION_LOST = "connection lost"
REDIRECT_LOOP = "redirect loop"
RATE_LIMITED = "rate limited"
HTTP_ERROR = "http error"
EMPTY_ANSWER = "empty answer"
NOT_JSON = "not json"
TRUNCATED_JSON = "truncated json"
MALFORMED_JSON = "malformed json"
CKAN_ERROR = "ckan error"
NOT_CKAN = "not a ckan site"

REASON_KINDS = (
    TIMEOUT, DNS, TLS, CONNECTION_REFUSED, CONNECTION_LOST, REDIRECT_LOOP, RATE_LIMITED,
    HTTP_ERROR, EMPTY_ANSWER, NOT_JSON, TRUNCATED_JSON, MALFORMED_JSON, CKAN_ERROR, NOT_CKAN,
)

#: The Action API calls whose failures the truth lists (``Truth.errors`` keys).
ENDPOINTS = ("status_show", "package_search", "package_list", "organization_list", "group_list")


@dataclass(frozen=True)
class Reason:
    """Why a probe fails: a kind from REASON_KINDS and, for HTTP answers, the status."""

    kind: str
    status: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in REASON_KINDS:
            raise ValueError(f"unknown reason kind {self.kind!r}; use one of {REASON_KINDS}")

    def matches(self, recorded: str | None) -> bool:
        """True if a recorded reason (``"<kind>: <detail>"``) says the same thing.

        The kind must be equal; when a status is known, ``HTTP <status>`` must appear in
        the detail (ckancrawl writes it as ``... (HTTP 403)`` or ``HTTP 404 at <url>``).
        """
        if not recorded:
            return False
        kind, _, detail = str(recorded).partition(":")
        if kind.strip() != self.kind:
            return False
        return self.status is None or f"HTTP {self.status}" in detail

    def __str__(self) -> str:
        return self.kind if self.status is None else f"{self.kind} (HTTP {self.status})"


# -- faults --------------------------------------------------------------------------

#: Fault kinds and the reason a crawler must give for them.
FAULT_KINDS = {
    # CKAN's own JSON error: HTTP ``status`` + {"success": false, "error": {...}}.
    "ckan_error": CKAN_ERROR,
    # An HTML error page with HTTP ``status`` (a proxy, or Pylons' unhandled error).
    "http": HTTP_ERROR,
    # Sleep ``delay_s`` seconds, then answer normally.
    "slow": TIMEOUT,
    # 200 with a body that is not JSON: a Python repr of the envelope.
    "malformed": MALFORMED_JSON,
    # Content-Length says N bytes, N/2 are sent, then the connection is closed:
    # the client sees data loss ("connection lost").
    "truncated_length": CONNECTION_LOST,
    # No Content-Length, "Connection: close", the JSON is cut in the middle and the
    # connection closed cleanly: the client gets a complete answer holding cut JSON.
    "truncated_close": TRUNCATED_JSON,
    # 200 with Content-Length: 0.
    "empty": EMPTY_ANSWER,
    # 200 text/html (a web page) where JSON was expected.
    "html": NOT_JSON,
}


@dataclass
class Fault:
    """How one action of a CKAN host, or every answer of a host, misbehaves."""

    kind: str
    status: int = 200
    #: For ckan_error: the error's ``__type`` and ``message``.
    error_type: str | None = None
    message: str | None = None
    #: For slow: seconds to wait before answering.
    delay_s: float = 0.0
    #: Only these calls of the action misbehave, counted from 1 per host (retries are
    #: calls too); empty: every call.
    calls: list[int] = field(default_factory=list)
    #: Only calls asking for at least this many ``rows`` misbehave (a portal that
    #: cannot serve big pages); 0: any.
    min_rows: int = 0

    def applies(self, call: int, params: Mapping[str, str]) -> bool:
        if self.calls and call not in self.calls:
            return False
        if self.min_rows:
            try:
                return int(params.get("rows") or 10) >= self.min_rows
            except ValueError:
                return False
        return True

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")

    def reason(self) -> Reason:
        kind = FAULT_KINDS[self.kind]
        if self.kind == "http" and self.status == 429:
            return Reason(RATE_LIMITED, 429)
        status = self.status if kind in (CKAN_ERROR, HTTP_ERROR) else None
        return Reason(kind, status)


def ckan_error(status: int, error_type: str, message: str) -> Fault:
    return Fault("ckan_error", status=status, error_type=error_type, message=message)


# -- hosts and portals -----------------------------------------------------------------


@dataclass
class CkanSpec:
    """A CKAN install: version, where it lives, what status_show says, its sizes."""

    version: str = "2.11.3"
    #: 2 or 3; None means the version's usual one (2 before 2.9, 3 from 2.9 on). It
    #: matters for 2.9.0/2.9.1, see ckan_api.list_rules.
    python: int | None = None
    #: Sub-path install (``ckan.root_path``), e.g. "/data"; "" for the host root.
    prefix: str = ""
    #: With a prefix: "/" answers 302 to "<prefix>/" (else "/" is some other web page).
    root_redirect: bool = False
    #: Where the Action API answers; core CKAN serves both.
    api_paths: list[str] = field(default_factory=lambda: ["/api/3/action/", "/api/action/"])
    site_title: str = "CKAN"
    site_description: str = ""
    site_url: str = "http://localhost:5000"
    locale_default: str = "en"
    error_emails_to: str | None = None
    extensions: list[str] = field(default_factory=lambda: ["datastore", "datapusher", "text_view"])
    #: How status_show sends them: "list" (core CKAN, every version), "string" (space
    #: separated), "dict" (name -> version), "missing" (no key), "null".
    extensions_shape: str = "list"
    #: ckan.hide_version (2.10+): status_show leaves out ckan_version.
    hide_version: bool = False
    #: The <meta name="generator" content="ckan X.Y.Z"> of CKAN's page template
    #: (themes may drop it).
    generator_meta: bool = True
    num_datasets: int = 0
    num_organizations: int = 0
    num_groups: int = 0
    #: ckan.group_and_organization_list_max, on the versions that apply it.
    list_max: int = 1000
    #: Action name -> how it fails ("status_show", "package_search", ...).
    faults: dict[str, Fault] = field(default_factory=dict)
    #: Datasets served by package_search, package_show and package_list (see
    #: tests.world.datasets); None: stub search results and names only, num_datasets
    #: of them.
    datasets: DatasetsSpec | None = None


#: Host roles.
ROLES = ("ckan", "html", "status", "redirect")


@dataclass
class HostSpec:
    """One loopback address of the world and what it answers."""

    address: str
    #: A ``*.test`` name mapped to ``address`` in the hosts file (else listed by IP).
    hostname: str | None = None
    role: str = "ckan"
    ckan: CkanSpec | None = None
    #: Added to every answer of this host.
    latency_ms: int = 0
    #: role "status": this status on every path, with an HTML page.
    status: int = 404
    #: role "redirect": target origin (template), e.g. "http://127.1.0.9:{port}".
    redirect_to: str = ""
    redirect_status: int = 301
    #: Append the requested path and query to redirect_to.
    redirect_keep_path: bool = True
    #: Also serve on the world's TLS port (self-signed certificate).
    tls: bool = False
    #: On the plain port, answer 301 to https://<same host>:{tls_port}<same path>.
    https_redirect: bool = False
    #: The first N requests (any path) get 429 with Retry-After.
    rate_limit_first: int = 0
    retry_after: int = 1
    #: A fault applied to every answer of this host (e.g. slow everywhere).
    fault: Fault | None = None
    #: role "html": the page title.
    title: str = "Welcome"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown host role {self.role!r}; use one of {ROLES}")
        if not ipaddress.ip_address(self.address).is_loopback:
            raise ValueError(f"{self.address} is not a loopback address")
        if self.role == "ckan" and self.ckan is None:
            self.ckan = CkanSpec()

    @property
    def name(self) -> str:
        """How URLs name this host: its host name if it has one, else its address."""
        return self.hostname or self.address

    def origin(self, tls: bool = False) -> str:
        """``scheme://name:port`` as a template."""
        return f"https://{self.name}:{{tls_port}}" if tls else f"http://{self.name}:{{port}}"


@dataclass
class Truth:
    """What a correct crawler records for a portal. Unknown is None.

    ``failure`` is set when no Action API can be found (then every value is None);
    ``errors`` maps each failing Action API call (ENDPOINTS) to its reason.
    """

    api_url: str | None = None
    ckan_version: str | None = None
    extensions: list[str] | None = None
    site_title: str | None = None
    site_url: str | None = None
    locale_default: str | None = None
    num_datasets: int | None = None
    num_datasets_method: str | None = None
    num_organizations: int | None = None
    num_groups: int | None = None
    failure: Reason | None = None
    errors: dict[str, Reason] = field(default_factory=dict)

    VALUE_FIELDS = (
        "api_url", "ckan_version", "extensions", "site_title", "site_url", "locale_default",
        "num_datasets", "num_datasets_method", "num_organizations", "num_groups",
    )

    def mismatches(self, item: Mapping[str, Any]) -> list[str]:
        """What a crawled item (a SiteSnapshot as a dict) gets wrong; [] if nothing.

        Values are compared by meaning (a count may be a numeric string). ``failure``
        and the ENDPOINTS entries of ``errors`` must match the truth's reasons; other
        ``errors`` keys (such as ``home_page``) are not judged.
        """
        problems = []
        for name in self.VALUE_FIELDS:
            want, got = getattr(self, name), item.get(name)
            if not _same_value(want, got):
                problems.append(f"{name}: want {want!r}, got {got!r}")
        recorded_failure = item.get("failure")
        if self.failure is None:
            if recorded_failure:
                problems.append(f"failure: want none, got {recorded_failure!r}")
        elif not self.failure.matches(recorded_failure):
            problems.append(f"failure: want {self.failure}, got {recorded_failure!r}")
        recorded_errors = item.get("errors") or {}
        for endpoint in ENDPOINTS:
            want_reason, got_reason = self.errors.get(endpoint), recorded_errors.get(endpoint)
            if want_reason is None:
                if got_reason:
                    problems.append(f"errors[{endpoint}]: want none, got {got_reason!r}")
            elif not want_reason.matches(got_reason):
                problems.append(f"errors[{endpoint}]: want {want_reason}, got {got_reason!r}")
        return problems


def _same_value(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, int) and not isinstance(got, bool):
        try:
            return int(str(got).strip()) == want
        except ValueError:
            return False
    if isinstance(want, list):
        return isinstance(got, (list, tuple)) and list(got) == want
    return str(want) == str(got)


@dataclass
class PortalSpec:
    """One listed site: where the catalog points, the hosts involved, the truth."""

    name: str
    preset: str
    #: Template; see fill_ports.
    listed_url: str
    hosts: list[HostSpec]
    truth: Truth


# -- templates and JSON ------------------------------------------------------------------


def fill_ports(template: str | None, port: int, tls_port: int | None) -> str | None:
    """Fill ``{port}`` and ``{tls_port}`` in a URL template."""
    if template is None:
        return None
    return template.replace("{port}", str(port)).replace("{tls_port}", str(tls_port or 0))


def resolved_truth(truth: Truth, port: int, tls_port: int | None) -> Truth:
    return replace(truth, api_url=fill_ports(truth.api_url, port, tls_port))


def portal_to_dict(portal: PortalSpec) -> dict[str, Any]:
    return asdict(portal)


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names})


def fault_from_dict(data: Mapping[str, Any] | None) -> Fault | None:
    return None if data is None else _build(Fault, data)


def ckan_from_dict(data: Mapping[str, Any] | None) -> CkanSpec | None:
    if data is None:
        return None
    ckan = _build(CkanSpec, data)
    ckan.faults = {name: fault_from_dict(f) for name, f in (data.get("faults") or {}).items()}
    if data.get("datasets") is not None:
        ckan.datasets = _build(DatasetsSpec, data["datasets"])
    return ckan


def host_from_dict(data: Mapping[str, Any]) -> HostSpec:
    values = dict(data)
    values["ckan"] = ckan_from_dict(data.get("ckan"))
    values["fault"] = fault_from_dict(data.get("fault"))
    return _build(HostSpec, values)


def reason_from_dict(data: Mapping[str, Any] | None) -> Reason | None:
    return None if data is None else _build(Reason, data)


def truth_from_dict(data: Mapping[str, Any]) -> Truth:
    truth = _build(Truth, data)
    truth.failure = reason_from_dict(data.get("failure"))
    truth.errors = {name: reason_from_dict(r) for name, r in (data.get("errors") or {}).items()}
    return truth


def portal_from_dict(data: Mapping[str, Any]) -> PortalSpec:
    return PortalSpec(
        name=data["name"],
        preset=data["preset"],
        listed_url=data["listed_url"],
        hosts=[host_from_dict(h) for h in data["hosts"]],
        truth=truth_from_dict(data["truth"]),
    )


def portals_to_json(portals: list[PortalSpec]) -> str:
    return json.dumps([portal_to_dict(p) for p in portals])


def portals_from_json(text: str) -> list[PortalSpec]:
    return [portal_from_dict(d) for d in json.loads(text)]


# -- truth of a CKAN host -----------------------------------------------------------------


def api_url_of(host: HostSpec, tls: bool = False) -> str:
    """Where a crawler finds the Action API of a CKAN host (template)."""
    ckan = host.ckan
    assert ckan is not None
    path = next((p for p in ("/api/3/action/", "/api/action/") if p in ckan.api_paths), None)
    if path is None:
        raise ValueError(f"{host.address}: the CKAN spec serves no Action API path")
    return host.origin(tls) + ckan.prefix + path


def ckan_truth(host: HostSpec, tls: bool = False) -> Truth:
    """The truth of a working CKAN host, faults of its actions included."""
    ckan = host.ckan
    assert ckan is not None
    version = ckan_api.parse_version(ckan.version)
    truth = Truth(
        api_url=api_url_of(host, tls),
        ckan_version=None if (ckan.hide_version and version >= (2, 10)) else ckan.version,
        extensions=ckan_api.normalized_extensions(ckan.extensions, ckan.extensions_shape),
        site_title=ckan.site_title or None,
        site_url=ckan.site_url or None,
        locale_default=ckan.locale_default or None,
    )
    faults = ckan.faults
    if "status_show" in faults:
        if faults["status_show"].kind != "ckan_error":
            raise ValueError("a status_show fault must be a CKAN error: the API must stay recognisable")
        truth.errors["status_show"] = faults["status_show"].reason()
        truth.ckan_version = truth.extensions = None
        truth.site_title = truth.site_url = truth.locale_default = None
    if "package_search" not in faults:
        truth.num_datasets, truth.num_datasets_method = ckan.num_datasets, "package_search"
    else:
        truth.errors["package_search"] = faults["package_search"].reason()
        if "package_list" in faults:
            truth.errors["package_list"] = faults["package_list"].reason()
        else:
            truth.num_datasets, truth.num_datasets_method = ckan.num_datasets, "package_list"
    for action, count in (("organization_list", ckan.num_organizations), ("group_list", ckan.num_groups)):
        if action in faults:
            truth.errors[action] = faults[action].reason()
        else:
            setattr(truth, "num_organizations" if action == "organization_list" else "num_groups", count)
    return truth


def failed_truth(reason: Reason) -> Truth:
    return Truth(failure=reason)


# -- addresses ------------------------------------------------------------------------------


class AddressPool:
    """Hands out unique loopback addresses and ``*.test`` host names.

    Addresses start at 127.1.0.1 (127.0.0.0/16 is left to the control endpoint and to
    other local services) and skip .0 and .255 in the last byte.
    """

    def __init__(self, first: str = "127.1.0.1") -> None:
        self._next = int(ipaddress.IPv4Address(first))
        self._names = 0

    def address(self) -> str:
        while True:
            candidate = ipaddress.IPv4Address(self._next)
            self._next += 1
            if not candidate.is_loopback:
                raise RuntimeError("the loopback range is exhausted")
            if candidate.packed[3] not in (0, 255):
                return str(candidate)

    def hostname(self, label: str = "portal") -> str:
        self._names += 1
        return f"{label}-{self._names}.test"


# -- presets ----------------------------------------------------------------------------------

#: Plugins seen on real portals, by era; the default extension lists draw from them.
_PLUGINS_OLD = ["stats", "text_view", "image_view", "recline_view", "datastore", "datapusher"]
_PLUGINS_NEW = ["activity", "image_view", "text_view", "datatables_view", "datastore", "xloader", "scheming_datasets"]


def default_extensions(version: str) -> list[str]:
    parsed = ckan_api.parse_version(version)
    if parsed < (2, 9):
        return list(_PLUGINS_OLD)
    if parsed < (2, 10):
        return [p for p in _PLUGINS_NEW if p != "activity"] + ["dcat", "harvest", "ckan_harvester"]
    return list(_PLUGINS_NEW)


def ckan_host(
    pool: AddressPool,
    *,
    version: str = "2.11.3",
    hostname: str | None = None,
    latency_ms: int = 0,
    tls: bool = False,
    **ckan_fields: Any,
) -> HostSpec:
    """A CKAN host; ``ckan_fields`` are CkanSpec fields (extensions default by version)."""
    ckan_fields.setdefault("extensions", default_extensions(version))
    address = pool.address()
    ckan_fields.setdefault("site_title", f"Open Data {address}")
    ckan_fields.setdefault("site_url", f"https://{hostname or 'portal-' + address.replace('.', '-')}.example.org")
    return HostSpec(
        address=address,
        hostname=hostname,
        role="ckan",
        latency_ms=latency_ms,
        tls=tls,
        ckan=CkanSpec(version=version, **ckan_fields),
    )


def _portal(preset: str, listed_url: str, hosts: list[HostSpec], truth: Truth, name: str | None) -> PortalSpec:
    return PortalSpec(name=name or f"{preset}@{hosts[0].address if hosts else listed_url}",
                      preset=preset, listed_url=listed_url, hosts=hosts, truth=truth)


def ckan_portal(
    pool: AddressPool,
    *,
    preset: str = "ckan",
    name: str | None = None,
    listed_path: str | None = None,
    use_hostname: bool = False,
    num_datasets: int = 120,
    num_organizations: int = 12,
    num_groups: int = 5,
    **host_fields: Any,
) -> PortalSpec:
    """A healthy CKAN portal listed by its home page (the general constructor).

    ``host_fields`` go to :func:`ckan_host` (version, latency_ms, and CkanSpec fields
    such as extensions_shape, prefix, faults).
    """
    if use_hostname:
        host_fields.setdefault("hostname", pool.hostname("portal"))
    host = ckan_host(pool, num_datasets=num_datasets, num_organizations=num_organizations,
                     num_groups=num_groups, **host_fields)
    assert host.ckan is not None
    path = listed_path if listed_path is not None else (host.ckan.prefix + "/")
    return _portal(preset, host.origin() + path, [host], ckan_truth(host), name)


def extensions_as(pool: AddressPool, shape: str, **kw: Any) -> PortalSpec:
    """status_show.extensions as "list", "string", "dict", "missing" or "null".

    Core CKAN sends a list on every version from 2.2 to 2.11 (``ckan.plugins`` split on
    spaces; a list-typed config option from 2.10). The other shapes come from
    customised status_show actions and API gateways; crawlers meet them all the same.
    """
    kw.setdefault("version", "2.9.11")
    return ckan_portal(pool, preset=f"extensions_{shape}", extensions_shape=shape, **kw)


def many_organizations(pool: AddressPool, count: int = 2345, **kw: Any) -> PortalSpec:
    """More organizations (and groups) than the 1000-name list cap of recent CKAN.

    From 2.9.0 (and 2.7.10 / 2.8.7, ckan/ckan#4484, commit f7f081ec) organization_list
    and group_list return at most ``ckan.group_and_organization_list_max`` (1000) names
    per call and page with limit/offset.
    """
    kw.setdefault("version", "2.11.3")
    kw.setdefault("num_groups", 1200)
    return ckan_portal(pool, preset="many_organizations", num_organizations=count, **kw)


def exactly_the_cap(pool: AddressPool, **kw: Any) -> PortalSpec:
    """Exactly 1000 organizations on a capped version: a full first page, then none."""
    kw.setdefault("version", "2.9.11")
    return ckan_portal(pool, preset="exactly_the_cap", num_organizations=1000, num_groups=25, **kw)


def old_uncapped(pool: AddressPool, count: int = 2345, **kw: Any) -> PortalSpec:
    """CKAN before 2.5: organization_list ignores limit/offset and returns every name.

    ``_group_or_org_list`` only read limit/offset from 2.5.0 on (ckan-2.4.0
    ckan/logic/action/get.py has neither), and there was no cap before 2.7.10/2.8.7.
    """
    kw.setdefault("version", "2.4.9")
    kw.setdefault("num_groups", 1100)
    return ckan_portal(pool, preset="old_uncapped", num_organizations=count, **kw)


def paged_uncapped(pool: AddressPool, count: int = 2345, **kw: Any) -> PortalSpec:
    """CKAN 2.5 to 2.7.9 and 2.8.0 to 2.8.6: limit/offset honoured, no cap without them."""
    kw.setdefault("version", "2.6.9")
    return ckan_portal(pool, preset="paged_uncapped", num_organizations=count, **kw)


def limit_crash(pool: AddressPool, count: int = 1500, **kw: Any) -> PortalSpec:
    """CKAN 2.9.0/2.9.1 on Python 3: any ``limit`` in organization_list/group_list is a 500.

    ``if limit is None or limit > max_limit`` compares the query-string ``limit`` with
    an int: TypeError on Python 3, answered as CKAN's JSON 500 "Internal Server Error"
    (fixed in 2.9.2 by ckan/ckan#5789, ``int(limit)``). Paging by ``offset`` alone works
    (each call returns the 1000 names after the offset), so the counts are knowable.
    """
    kw.setdefault("version", "2.9.1")
    return ckan_portal(pool, preset="limit_crash", num_organizations=count, python=3, **kw)


def package_list_disabled(pool: AddressPool, **kw: Any) -> PortalSpec:
    """package_list answers 403 with CKAN's Authorization Error; package_search works.

    Large portals switch package_list off with an auth plugin; CKAN then answers
    ``{"success": false, "error": {"__type": "Authorization Error", "message":
    "Access denied: ..."}}`` with HTTP 403. A crawler that counts with package_search
    never notices (no error in the truth).
    """
    faults = {"package_list": ckan_error(403, "Authorization Error", "Access denied: package_list is disabled")}
    return ckan_portal(pool, preset="package_list_disabled", faults=faults, num_datasets=25000, **kw)


def search_failing(pool: AddressPool, status: int = 409, **kw: Any) -> PortalSpec:
    """package_search fails, so the dataset count must come from package_list.

    409 "Search Error" is what every version sends when Solr answers an error or cannot
    be reached (SearchError, ckan/views/api.py and ckan/controllers/api.py); from
    2.10.5 an unreachable Solr is 500 "Search Connection Error" instead.
    """
    if status == 409:
        kw.setdefault("version", "2.9.11")
        fault = ckan_error(409, "Search Error", solr_search_error_message())
    elif status == 500:
        kw.setdefault("version", "2.11.3")
        fault = ckan_error(500, "Search Connection Error", "Unable to connect to the search server")
    else:
        raise ValueError("search_failing: status is 409 or 500")
    return ckan_portal(pool, preset=f"search_failing_{status}", faults={"package_search": fault}, **kw)


def solr_search_error_message() -> str:
    """The message of SearchError as ``'Search error: %r' % e.args`` renders it on
    Python 3 when pysolr cannot reach Solr (lib/search/query.py, ``run``)."""
    query = {"q": "*:*", "fq": '+site_id:"default" +state:active', "rows": 0, "wt": "json"}
    solr_error = ("SolrError('Failed to connect to server at http://solr:8983/solr/ckan/select/"
                  "?q=%2A%3A%2A&rows=0&wt=json: [Errno 111] Connection refused')")
    inner = "SOLR returned an error running query: %r Error: %s" % (query, solr_error)
    return "Search error: %r" % ((inner,),)


def search_and_list_unavailable(pool: AddressPool, **kw: Any) -> PortalSpec:
    """package_search fails and package_list is disabled: the dataset count is unknown."""
    faults = {
        "package_search": ckan_error(409, "Search Error", solr_search_error_message()),
        "package_list": ckan_error(403, "Authorization Error", "Access denied: package_list is disabled"),
    }
    return ckan_portal(pool, preset="search_and_list_unavailable", faults=faults, **kw)


def api_action_only(pool: AddressPool, **kw: Any) -> PortalSpec:
    """The Action API answers only at /api/action/; /api/3/action/ is a 404 HTML page
    (a proxy that forwards only one of CKAN's two routes)."""
    return ckan_portal(pool, preset="api_action_only", api_paths=["/api/action/"], **kw)


def sub_path(pool: AddressPool, prefix: str = "/data", **kw: Any) -> PortalSpec:
    """CKAN installed under a sub-path; "/" is the organisation's own (non-CKAN) page."""
    return ckan_portal(pool, preset="sub_path", prefix=prefix, **kw)


def dataset_page_listed(pool: AddressPool, page: str = "/dataset", **kw: Any) -> PortalSpec:
    """The catalog lists the portal's dataset page rather than its home page."""
    return ckan_portal(pool, preset="dataset_page_listed", listed_path=page, **kw)


def status_show_forbidden(pool: AddressPool, **kw: Any) -> PortalSpec:
    """status_show is refused (403 Authorization Error; 2.10+ checks its auth function)
    but every count works. The API is recognisable by its error envelope."""
    kw.setdefault("version", "2.10.5")
    faults = {"status_show": ckan_error(403, "Authorization Error", "Access denied")}
    return ckan_portal(pool, preset="status_show_forbidden", faults=faults, **kw)


def hidden_version(pool: AddressPool, **kw: Any) -> PortalSpec:
    """``ckan.hide_version = true`` (2.10+): status_show has no ckan_version, and the
    theme drops the generator meta tag. Not an error: the version is just unknown."""
    kw.setdefault("version", "2.10.5")
    return ckan_portal(pool, preset="hidden_version", hide_version=True, generator_meta=False, **kw)


def partial(pool: AddressPool, endpoint: str = "organization_list", **kw: Any) -> PortalSpec:
    """status_show works but one list action fails with CKAN's JSON 500."""
    kw.setdefault("version", "2.10.5")
    faults = {endpoint: ckan_error(500, "Internal Server Error", "Internal Server Error")}
    return ckan_portal(pool, preset="partial", faults=faults, **kw)


def rate_limited(pool: AddressPool, first: int = 2, **kw: Any) -> PortalSpec:
    """The first ``first`` requests to the host get 429 with ``Retry-After: 1`` (nginx
    limit_req in front of CKAN), then everything works."""
    portal = ckan_portal(pool, preset="rate_limited", **kw)
    portal.hosts[0].rate_limit_first = first
    return portal


def slow_endpoint(pool: AddressPool, endpoint: str = "package_search", delay_s: float = SLOW_DELAY_S,
                  **kw: Any) -> PortalSpec:
    """One action answers after ``delay_s`` seconds, past the crawler's timeout."""
    return ckan_portal(pool, preset="slow_endpoint", faults={endpoint: Fault("slow", delay_s=delay_s)}, **kw)


def faulty_answer(pool: AddressPool, kind: str, endpoint: str, **kw: Any) -> PortalSpec:
    """One action answers 200 with a broken body: ``kind`` is one of malformed,
    truncated_length, truncated_close, empty, html (see FAULT_KINDS)."""
    return ckan_portal(pool, preset=_FAULTY_ANSWER_PRESETS[kind], faults={endpoint: Fault(kind)}, **kw)


_FAULTY_ANSWER_PRESETS = {
    "malformed": "malformed_json", "truncated_length": "truncated_json_length",
    "truncated_close": "truncated_json_close", "empty": "empty_body", "html": "html_instead_of_json",
}


def malformed_json(pool: AddressPool, endpoint: str = "organization_list", **kw: Any) -> PortalSpec:
    return faulty_answer(pool, "malformed", endpoint, **kw)


def truncated_json(pool: AddressPool, mode: str = "length", endpoint: str | None = None, **kw: Any) -> PortalSpec:
    """Cut JSON. mode "length": Content-Length promises more than is sent before the
    connection closes (data loss: "connection lost"). mode "close": no Content-Length,
    the JSON is cut and the connection closed cleanly ("truncated json")."""
    endpoint = endpoint or ("group_list" if mode == "length" else "organization_list")
    return faulty_answer(pool, f"truncated_{mode}", endpoint, **kw)


def empty_body(pool: AddressPool, endpoint: str = "package_search", **kw: Any) -> PortalSpec:
    return faulty_answer(pool, "empty", endpoint, **kw)


def html_instead_of_json(pool: AddressPool, endpoint: str = "group_list", **kw: Any) -> PortalSpec:
    return faulty_answer(pool, "html", endpoint, **kw)


def _single_host_failure(preset: str, host: HostSpec, reason: Reason,
                         name: str | None = None, listed_path: str = "/") -> PortalSpec:
    return _portal(preset, host.origin() + listed_path, [host], failed_truth(reason), name)


def not_ckan(pool: AddressPool, latency_ms: int = 0, name: str | None = None) -> PortalSpec:
    """A web site that is not CKAN: 200 HTML on every path, the API paths included."""
    host = HostSpec(address=pool.address(), role="html", title="City of Example", latency_ms=latency_ms)
    return _single_host_failure("not_ckan", host, Reason(NOT_CKAN), name)


def status_everywhere(pool: AddressPool, status: int, latency_ms: int = 0, name: str | None = None) -> PortalSpec:
    """The same HTTP status with an HTML page on every path.

    404 everywhere: a server without any Action API, "not a ckan site". 5xx everywhere:
    the server is broken, nothing says whether it is CKAN: "http error".
    """
    host = HostSpec(address=pool.address(), role="status", status=status, latency_ms=latency_ms)
    if status == 429:
        preset, reason = "rate_limited_always", Reason(RATE_LIMITED, 429)
    elif status >= 500:
        preset, reason = "server_error_everywhere", Reason(HTTP_ERROR, status)
    else:
        preset, reason = "not_found_everywhere" if status == 404 else f"status_{status}_everywhere", Reason(NOT_CKAN, status)
    return _single_host_failure(preset, host, reason, name)


def slow_site(pool: AddressPool, delay_s: float = SLOW_DELAY_S, latency_ms: int = 0,
              name: str | None = None) -> PortalSpec:
    """A CKAN whose every answer comes after ``delay_s`` seconds: "timeout"."""
    host = ckan_host(pool, latency_ms=latency_ms)
    host.fault = Fault("slow", delay_s=delay_s)
    return _single_host_failure("slow_site", host, Reason(TIMEOUT), name)


def redirect_chain(pool: AddressPool, https: bool = False, latency_ms: int = 0, name: str | None = None,
                   **ckan_fields: Any) -> PortalSpec:
    """Listed ``http://chain-N.test/`` answers 301 to another host (same path), whose
    "/" answers 302 to the sub-path "/data/" where CKAN lives. With ``https`` the 301
    goes to the other host's TLS port."""
    final = ckan_host(pool, prefix="/data", root_redirect=True, latency_ms=latency_ms, tls=https,
                      num_datasets=ckan_fields.pop("num_datasets", 300),
                      num_organizations=ckan_fields.pop("num_organizations", 20),
                      num_groups=ckan_fields.pop("num_groups", 4), **ckan_fields)
    first = HostSpec(address=pool.address(), hostname=pool.hostname("chain"), role="redirect",
                     redirect_to=final.origin(https), redirect_status=301, latency_ms=latency_ms)
    return _portal("redirect_chain" + ("_https" if https else ""), first.origin() + "/",
                   [first, final], ckan_truth(final, tls=https), name)


def http_to_https(pool: AddressPool, latency_ms: int = 0, name: str | None = None, **ckan_fields: Any) -> PortalSpec:
    """Listed as http; the plain port answers 301 to https on the same host, where
    CKAN answers (self-signed certificate: Scrapy does not verify by default)."""
    host = ckan_host(pool, latency_ms=latency_ms, tls=True, **ckan_fields)
    host.https_redirect = True
    return _portal("http_to_https", host.origin() + "/", [host], ckan_truth(host, tls=True), name)


def moved_domain(pool: AddressPool, latency_ms: int = 0, name: str | None = None, **ckan_fields: Any) -> PortalSpec:
    """``old-N.test`` answers 301 to ``new-N.test`` (same path) for every path."""
    new = ckan_host(pool, hostname=pool.hostname("new"), latency_ms=latency_ms, **ckan_fields)
    old = HostSpec(address=pool.address(), hostname=pool.hostname("old"), role="redirect",
                   redirect_to=new.origin(), redirect_status=301, latency_ms=latency_ms)
    return _portal("moved_domain", old.origin() + "/", [old, new], ckan_truth(new), name)


def redirect_loop(pool: AddressPool, latency_ms: int = 0, name: str | None = None) -> PortalSpec:
    """Two hosts answer 302 to each other (same path) on every path."""
    a = HostSpec(address=pool.address(), role="redirect", redirect_status=302, latency_ms=latency_ms)
    b = HostSpec(address=pool.address(), role="redirect", redirect_status=302, latency_ms=latency_ms,
                 redirect_to=a.origin())
    a.redirect_to = b.origin()
    return _portal("redirect_loop", a.origin() + "/", [a, b], failed_truth(Reason(REDIRECT_LOOP)), name)


def https_on_plain_port(pool: AddressPool, latency_ms: int = 0, name: str | None = None) -> PortalSpec:
    """Listed as https at the world's plain-HTTP port: the TLS handshake fails."""
    host = ckan_host(pool, latency_ms=latency_ms)
    listed = f"https://{host.name}:{{port}}/"
    return _portal("https_on_plain_port", listed, [host], failed_truth(Reason(TLS)), name)


def unresolvable(pool: AddressPool, name: str | None = None) -> PortalSpec:
    """A ``*.test`` name that is in no hosts file: "dns" (no DNS query is ever sent)."""
    hostname = pool.hostname("missing")
    return _portal("unresolvable", f"http://{hostname}:{{port}}/", [], failed_truth(Reason(DNS)),
                   name or f"unresolvable@{hostname}")


def nothing_listening(pool: AddressPool, name: str | None = None) -> PortalSpec:
    """A loopback address where nothing listens: "connection refused"."""
    address = pool.address()
    return _portal("nothing_listening", f"http://{address}:{{port}}/", [],
                   failed_truth(Reason(CONNECTION_REFUSED)), name or f"nothing_listening@{address}")


def dataset_portal(pool: AddressPool, datasets: DatasetsSpec | None = None, preset: str = "datasets",
                   **kw: Any) -> PortalSpec:
    """A CKAN portal that serves whole datasets (package_search, package_show,
    package_list; see tests.world.datasets), for harvests. ``num_datasets`` follows
    ``datasets.count``."""
    datasets = datasets or DatasetsSpec()
    return ckan_portal(pool, preset=preset, datasets=datasets, num_datasets=datasets.count, **kw)


#: Portals for the harvest spider: name -> constructor(pool, **kw) -> PortalSpec. The
#: keywords are CkanSpec/ckan_portal fields, plus ``count`` and ``seed``.
HARVEST_PRESETS: dict[str, Callable[..., PortalSpec]] = {
    # Every dataset shape of tests.world.datasets.SHAPES, cycled.
    "datasets_every_shape": lambda pool, count=60, seed=1, **kw: dataset_portal(
        pool, DatasetsSpec(count=count, seed=seed, shapes=list(SHAPES)), "datasets_every_shape", **kw),
    # package_search refused (403): the harvest needs package_list + package_show.
    "datasets_search_disabled": lambda pool, count=40, seed=2, **kw: dataset_portal(
        pool, DatasetsSpec(count=count, seed=seed), "datasets_search_disabled",
        faults={"package_search": ckan_error(403, "Authorization Error", "Access denied: package_search is disabled")},
        **kw),
    # The 3rd package_search call and its two retries answer 503: a page fails for good.
    "datasets_5xx_on_page_3": lambda pool, count=2500, seed=3, **kw: dataset_portal(
        pool, DatasetsSpec(count=count, seed=seed, notes_chars=40, resources=1), "datasets_5xx_on_page_3",
        faults={"package_search": Fault("http", status=503, calls=[3, 4, 5])}, **kw),
    # Pages of 600 rows or more answer 504 (a gateway timeout): pages must stay small.
    "datasets_big_pages_fail": lambda pool, count=2500, seed=4, **kw: dataset_portal(
        pool, DatasetsSpec(count=count, seed=seed, notes_chars=40, resources=1), "datasets_big_pages_fail",
        faults={"package_search": Fault("http", status=504, min_rows=600)}, **kw),
    # ckan.search.rows_max = 100: a page of 1000 asked brings 100.
    "datasets_rows_max_100": lambda pool, count=350, seed=5, **kw: dataset_portal(
        pool, DatasetsSpec(count=count, seed=seed, rows_max=100), "datasets_rows_max_100", **kw),
}


#: Every named preset: name -> constructor(pool, **kw) -> PortalSpec.
PRESETS: dict[str, Callable[..., PortalSpec]] = {
    "ckan": ckan_portal,
    "ckan_by_hostname": lambda pool, **kw: ckan_portal(pool, preset="ckan_by_hostname", use_hostname=True, **kw),
    "extensions_list": lambda pool, **kw: extensions_as(pool, "list", **kw),
    "extensions_dict": lambda pool, **kw: extensions_as(pool, "dict", **kw),
    "extensions_string": lambda pool, **kw: extensions_as(pool, "string", **kw),
    "extensions_missing": lambda pool, **kw: extensions_as(pool, "missing", **kw),
    "extensions_null": lambda pool, **kw: extensions_as(pool, "null", **kw),
    "many_organizations": many_organizations,
    "exactly_the_cap": exactly_the_cap,
    "old_uncapped": old_uncapped,
    "paged_uncapped": paged_uncapped,
    "limit_crash": limit_crash,
    "package_list_disabled": package_list_disabled,
    "search_failing_409": lambda pool, **kw: search_failing(pool, 409, **kw),
    "search_failing_500": lambda pool, **kw: search_failing(pool, 500, **kw),
    "search_and_list_unavailable": search_and_list_unavailable,
    "api_action_only": api_action_only,
    "sub_path": sub_path,
    "dataset_page_listed": dataset_page_listed,
    "status_show_forbidden": status_show_forbidden,
    "hidden_version": hidden_version,
    "partial": partial,
    "rate_limited": rate_limited,
    "slow_endpoint": slow_endpoint,
    "malformed_json": malformed_json,
    "truncated_json_length": lambda pool, **kw: truncated_json(pool, "length", **kw),
    "truncated_json_close": lambda pool, **kw: truncated_json(pool, "close", **kw),
    "empty_body": empty_body,
    "html_instead_of_json": html_instead_of_json,
    "not_ckan": not_ckan,
    "not_found_everywhere": lambda pool, **kw: status_everywhere(pool, 404, **kw),
    "server_error_everywhere": lambda pool, **kw: status_everywhere(pool, 500, **kw),
    "rate_limited_always": lambda pool, **kw: status_everywhere(pool, 429, **kw),
    "slow_site": slow_site,
    "redirect_chain": redirect_chain,
    "redirect_chain_https": lambda pool, **kw: redirect_chain(pool, https=True, **kw),
    "http_to_https": http_to_https,
    "moved_domain": moved_domain,
    "redirect_loop": redirect_loop,
    "https_on_plain_port": https_on_plain_port,
    "unresolvable": unresolvable,
    "nothing_listening": nothing_listening,
}


def one_of_each(pool: AddressPool | None = None, latency_ms: int = 0) -> list[PortalSpec]:
    """One portal per preset, every host with ``latency_ms``."""
    pool = pool or AddressPool()
    portals = [make(pool) for make in PRESETS.values()]
    for portal in portals:
        for host in portal.hosts:
            host.latency_ms = latency_ms
    return portals


def hosts_mapping(portals: list[PortalSpec]) -> dict[str, str]:
    """``*.test`` host name -> address, for the resolver's hosts file."""
    return {h.hostname: h.address for p in portals for h in p.hosts if h.hostname}
