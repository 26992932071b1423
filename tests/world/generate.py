"""The benchmark's world: many portals, mostly healthy CKAN, some faulty.

``make_world(n, faulty_share=0.05, latency_ms=100, seed=0)`` gives ``n`` PortalSpecs,
deterministic for a seed:

- about ``1 - faulty_share`` healthy CKAN portals of mixed versions (2.2 to 2.11,
  weighted towards 2.8 to 2.11), layouts (home page, sub-path install, dataset page
  listed, API only at /api/action/, http -> https, moved domain, redirect chain),
  extension shapes, listed by address or by ``*.test`` name, and sizes (datasets
  log-normal up to 150,000; about 3% with more than 1000 organizations and 2% with
  more than 1000 groups). Benign quirks are part of being healthy: package_list
  disabled, ``ckan.hide_version``, 2.9.1 on Python 3 (see spec.limit_crash).
- ``round(n * faulty_share)`` faulty portals drawn from the failure presets (FAULTY),
  including slow ones that answer after 20 s (past a 15 s timeout).

Every host gets ``latency_ms`` on every answer.
"""
from __future__ import annotations

import random
from typing import Any, Callable

from tests.world import ckan_api, spec
from tests.world.spec import AddressPool, PortalSpec

#: CKAN versions of the healthy portals, with weights.
VERSIONS = [
    ("2.2.4", 1), ("2.3.5", 2), ("2.4.9", 2), ("2.5.9", 3), ("2.6.9", 4), ("2.7.3", 3), ("2.7.12", 3),
    ("2.8.2", 5), ("2.8.12", 6), ("2.9.1", 1), ("2.9.5", 8), ("2.9.11", 12), ("2.10.4", 12), ("2.10.8", 8),
    ("2.11.0", 8), ("2.11.3", 12),
]

#: How healthy portals are laid out and listed, with weights.
LAYOUTS = [
    ("home", 76), ("sub_path", 5), ("dataset_page", 5), ("api_action_only", 2),
    ("http_to_https", 6), ("moved_domain", 3), ("redirect_chain", 3),
]

EXTENSION_SHAPES = [("list", 90), ("string", 4), ("dict", 3), ("missing", 3)]
LOCALES = [("en", 60), ("fr", 8), ("es", 8), ("de", 6), ("pt_BR", 6), ("it", 4), ("nl", 4), ("ja", 2), ("zh_CN", 2)]
EXTRA_PLUGINS = ["dcat", "harvest", "ckan_harvester", "spatial_metadata", "spatial_query", "showcase", "pages",
                 "googleanalytics", "scheming_datasets", "scheming_organizations", "geoview", "pdf_view",
                 "validation", "qa", "archiver", "report", "disqus", "issues", "fluent", "oauth2"]


def _slow_site(pool: AddressPool, rng: random.Random) -> PortalSpec:
    return spec.slow_site(pool, delay_s=spec.SLOW_DELAY_S)


def _slow_endpoint(pool: AddressPool, rng: random.Random) -> PortalSpec:
    endpoint = rng.choice(["package_search", "organization_list", "group_list"])
    return spec.slow_endpoint(pool, endpoint=endpoint, delay_s=spec.SLOW_DELAY_S)


def _broken_answer(kind: str) -> Callable[[AddressPool, random.Random], PortalSpec]:
    def make(pool: AddressPool, rng: random.Random) -> PortalSpec:
        endpoint = rng.choice(["package_search", "organization_list", "group_list"])
        return spec.faulty_answer(pool, kind, endpoint)
    return make


#: Failure presets of the faulty share, with weights.
FAULTY: list[tuple[str, Callable[[AddressPool, random.Random], PortalSpec], int]] = [
    ("slow_site", _slow_site, 6),
    ("slow_endpoint", _slow_endpoint, 4),
    ("not_ckan", lambda pool, rng: spec.not_ckan(pool), 10),
    ("not_found_everywhere", lambda pool, rng: spec.status_everywhere(pool, 404), 10),
    ("server_error_everywhere", lambda pool, rng: spec.status_everywhere(pool, rng.choice([500, 502, 503])), 8),
    ("rate_limited", lambda pool, rng: spec.rate_limited(pool, first=2), 5),
    ("rate_limited_always", lambda pool, rng: spec.status_everywhere(pool, 429), 2),
    ("malformed", _broken_answer("malformed"), 4),
    ("truncated_length", _broken_answer("truncated_length"), 3),
    ("truncated_close", _broken_answer("truncated_close"), 3),
    ("empty", _broken_answer("empty"), 3),
    ("html", _broken_answer("html"), 4),
    ("redirect_loop", lambda pool, rng: spec.redirect_loop(pool), 4),
    ("https_on_plain_port", lambda pool, rng: spec.https_on_plain_port(pool), 4),
    ("unresolvable", lambda pool, rng: spec.unresolvable(pool), 8),
    ("nothing_listening", lambda pool, rng: spec.nothing_listening(pool), 4),
    ("partial", lambda pool, rng: spec.partial(pool, rng.choice(["organization_list", "group_list"])), 6),
    ("search_failing", lambda pool, rng: spec.search_failing(pool, rng.choice([409, 500])), 6),
    ("search_and_list_unavailable", lambda pool, rng: spec.search_and_list_unavailable(pool), 2),
    ("status_show_forbidden", lambda pool, rng: spec.status_show_forbidden(pool), 3),
]


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*weighted)
    return rng.choices(values, weights=weights)[0]


def _size(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return min(cap, int(rng.lognormvariate(0, sigma) * median))


def _healthy(pool: AddressPool, rng: random.Random, index: int) -> PortalSpec:
    version = _pick(rng, VERSIONS)
    layout = _pick(rng, LAYOUTS)
    roll = rng.random()
    num_organizations = rng.randint(1001, 4000) if roll < 0.03 else _size(rng, 12, 1.3, 999)
    num_groups = rng.randint(1001, 2500) if rng.random() < 0.02 else _size(rng, 4, 1.2, 999)
    plugins = spec.default_extensions(version) + rng.sample(EXTRA_PLUGINS, rng.randint(0, 6))
    fields: dict[str, Any] = dict(
        version=version,
        num_datasets=_size(rng, 300, 1.8, 150_000),
        num_organizations=num_organizations,
        num_groups=num_groups,
        extensions=plugins,
        extensions_shape=_pick(rng, EXTENSION_SHAPES),
        locale_default=_pick(rng, LOCALES),
        site_title=f"Open Data Portal {index}",
        site_description=f"Datasets published by administration number {index}",
    )
    quirk = rng.random()
    if quirk < 0.02:
        fields["faults"] = {"package_list": spec.ckan_error(403, "Authorization Error",
                                                           "Access denied: package_list is disabled")}
    elif quirk < 0.03 and ckan_api.parse_version(version) >= (2, 10):
        fields.update(hide_version=True, generator_meta=False)
    name = f"p{index:05d}-{layout}"
    if layout == "http_to_https":
        return spec.http_to_https(pool, name=name, **fields)
    if layout == "moved_domain":
        return spec.moved_domain(pool, name=name, **fields)
    if layout == "redirect_chain":
        return spec.redirect_chain(pool, name=name, https=rng.random() < 0.5, **fields)
    if layout == "sub_path":
        fields["prefix"] = rng.choice(["/data", "/ckan", "/catalog", "/opendata"])
    elif layout == "api_action_only":
        fields["api_paths"] = ["/api/action/"]
    listed_path = rng.choice(["/dataset", "/dataset/", "/en/dataset"]) if layout == "dataset_page" else None
    use_hostname = rng.random() < 0.3
    return spec.ckan_portal(pool, preset=f"healthy_{layout}", name=name, listed_path=listed_path,
                            use_hostname=use_hostname, **fields)


def make_world(n: int, faulty_share: float = 0.05, latency_ms: int = 100, seed: int = 0,
               pool: AddressPool | None = None) -> list[PortalSpec]:
    """``n`` portals, ``round(n * faulty_share)`` of them faulty; same seed, same world.
    ``pool`` hands out the addresses (to share a world with other portals)."""
    rng = random.Random(seed)
    pool = pool or AddressPool()
    faulty = set(rng.sample(range(n), round(n * faulty_share)))
    weighted = [((name, make), weight) for name, make, weight in FAULTY]
    portals = []
    for index in range(n):
        if index in faulty:
            label, make = _pick(rng, weighted)
            portal = make(pool, rng)
            portal.name = f"p{index:05d}-{label}"
        else:
            portal = _healthy(pool, rng, index)
        for host in portal.hosts:
            host.latency_ms = latency_ms
        portals.append(portal)
    return portals
