"""The simulated world behaves as its specs say (tests/world/), and so does its resolver.

Most tests look at one portal of the session-wide ``preset_world`` through a plain
http.client; tests that count requests or need their own settings start a world of
their own with ``start_world``.
"""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from scrapy.settings import Settings
from twisted.internet.error import DNSLookupError

from tests.world import ckan_api, client, spec
from tests.world.generate import make_world
from tests.world.launcher import PROJECT_ROOT, RunningWorld, WorldPortal
from tests.world.resolver import WorldResolver, load_hosts


def one(world: RunningWorld, preset: str) -> WorldPortal:
    (portal,) = world.by_preset(preset)
    return portal


def hosts_of(world: RunningWorld) -> dict[str, str]:
    return load_hosts(world.hosts_file)


def call(world: RunningWorld, portal: WorldPortal, action: str, query: str = "", **options) -> client.Answer:
    url = portal.truth.api_url + action + (f"?{query}" if query else "")
    return client.get(url, hosts_of(world), **options)


def call_past_429(world: RunningWorld, portal: WorldPortal, action: str, query: str = "") -> client.Answer:
    """Like call, but asks again after a 429 (the world does not time Retry-After)."""
    for _ in range(10):
        answer = call(world, portal, action, query)
        if answer.status != 429:
            return answer
    raise AssertionError("still 429 after 10 tries")


# -- CKAN's envelope, by version ---------------------------------------------------------


def test_status_show_answers_in_ckans_envelope(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "ckan")
    answer = call(preset_world, portal, "status_show")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json;charset=utf-8"
    data = answer.json()
    assert list(data) == ["help", "success", "result"]
    assert data["success"] is True
    assert data["help"].endswith("/api/3/action/help_show?name=status_show")
    assert data["result"]["ckan_version"] == portal.truth.ckan_version == "2.11.3"
    assert set(data["result"]) == {"site_title", "site_description", "site_url", "ckan_version",
                                   "error_emails_to", "locale_default", "extensions"}


def test_help_is_built_from_site_url_not_from_the_request_host(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "ckan")
    help_url = call(preset_world, portal, "site_read").json()["help"]
    assert help_url == portal.truth.site_url + "/api/3/action/help_show?name=site_read"


def test_ckan_2_2_sends_the_docstring_as_help(start_world) -> None:
    world = start_world([spec.ckan_portal(spec.AddressPool(), version="2.2.4")])
    data = call(world, world.portals[0], "package_list").json()
    assert data["help"].startswith("Return a list of the names of the site's datasets")


@pytest.mark.parametrize("shape, expected", [
    ("list", list), ("string", str), ("dict", dict), ("null", type(None)), ("missing", None),
])
def test_extensions_come_in_every_shape(preset_world: RunningWorld, shape: str, expected) -> None:
    portal = one(preset_world, f"extensions_{shape}")
    result = call(preset_world, portal, "status_show").json()["result"]
    if expected is None:
        assert "extensions" not in result
        assert portal.truth.extensions is None
    else:
        assert isinstance(result["extensions"], expected)
    if shape in ("list", "string", "dict"):
        assert portal.truth.extensions == sorted(portal.spec.hosts[0].ckan.extensions)
    else:
        assert portal.truth.extensions is None


def test_an_unknown_action_is_a_400_whose_body_is_a_json_string(preset_world: RunningWorld) -> None:
    answer = call(preset_world, one(preset_world, "ckan"), "no_such_action")
    assert answer.status == 400
    assert answer.json() == "Bad request - Action name not known: no_such_action"


def test_hidden_version_leaves_ckan_version_out(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "hidden_version")
    result = call(preset_world, portal, "status_show").json()["result"]
    assert "ckan_version" not in result and portal.truth.ckan_version is None
    home = client.get(portal.listed_url, hosts_of(preset_world))
    assert b'name="generator"' not in home.body


def test_ckan_pages_name_the_generator_and_the_configured_site_root(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "sub_path")
    page = client.get(portal.listed_url, hosts_of(preset_world))
    assert page.status == 200
    assert b'<meta name="generator" content="ckan 2.11.3" />' in page.body
    assert f'data-site-root="{portal.truth.site_url}/data/"'.encode() in page.body


# -- list caps and paging -------------------------------------------------------------------


def names_of(answer: client.Answer) -> list[str]:
    assert answer.status == 200, answer.body[:300]
    return answer.json()["result"]


def test_recent_versions_cap_organization_list_at_1000(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "many_organizations")
    assert len(names_of(call(preset_world, portal, "organization_list"))) == 1000
    assert len(names_of(call(preset_world, portal, "organization_list", "limit=5000"))) == 1000


def test_recent_versions_page_with_limit_and_offset(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "many_organizations")
    pages = [names_of(call(preset_world, portal, "organization_list", f"limit=1000&offset={offset}"))
             for offset in (0, 1000, 2000, 3000)]
    assert [len(p) for p in pages] == [1000, 1000, 345, 0]
    assert len(set().union(*pages)) == 2345 == portal.truth.num_organizations
    assert pages[1][0] == "organization-01001"


def test_old_versions_ignore_limit_and_offset(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "old_uncapped")
    for query in ("", "limit=1000", "limit=1000&offset=1000"):
        names = names_of(call(preset_world, portal, "organization_list", query))
        assert len(names) == 2345 and names[0] == "organization-00001"


def test_versions_2_5_to_2_8_6_page_without_a_cap(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "paged_uncapped")
    assert len(names_of(call(preset_world, portal, "organization_list"))) == 2345
    assert names_of(call(preset_world, portal, "organization_list", "limit=3&offset=5")) == [
        "organization-00006", "organization-00007", "organization-00008"]


def test_ckan_2_9_1_on_python_3_fails_on_any_limit_but_pages_by_offset(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "limit_crash")
    crash = call(preset_world, portal, "organization_list", "limit=1000")
    assert crash.status == 500
    assert crash.json()["error"] == {"__type": "Internal Server Error", "message": "Internal Server Error"}
    by_offset = [names_of(call(preset_world, portal, "organization_list", f"offset={o}")) for o in (0, 1000, 2000)]
    assert [len(p) for p in by_offset] == [1000, 500, 0]


def test_a_bad_limit_is_ckans_validation_error(preset_world: RunningWorld) -> None:
    answer = call(preset_world, one(preset_world, "many_organizations"), "group_list", "limit=-3")
    assert answer.status == 409
    assert answer.json()["error"] == {"limit": ["Must be a natural number"], "__type": "Validation Error"}


def test_package_search_counts_with_rows_zero(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "ckan")
    result = call(preset_world, portal, "package_search", "rows=0").json()["result"]
    assert result["count"] == portal.truth.num_datasets and result["results"] == []


# -- CKAN's errors ------------------------------------------------------------------------


def test_disabled_package_list_is_a_403_authorization_error(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "package_list_disabled")
    answer = call(preset_world, portal, "package_list")
    assert answer.status == 403
    data = answer.json()
    assert data["success"] is False and data["error"]["__type"] == "Authorization Error"
    assert data["error"]["message"].startswith("Access denied")
    assert portal.truth.num_datasets_method == "package_search" and portal.truth.errors == {}


def test_failing_search_is_a_409_search_error_and_the_count_comes_from_package_list(
        preset_world: RunningWorld) -> None:
    portal = one(preset_world, "search_failing_409")
    answer = call(preset_world, portal, "package_search", "rows=0")
    assert answer.status == 409
    assert answer.json()["error"]["__type"] == "Search Error"
    assert portal.truth.errors == {"package_search": spec.Reason(spec.CKAN_ERROR, 409)}
    assert portal.truth.num_datasets_method == "package_list"
    assert len(names_of(call(preset_world, portal, "package_list"))) == portal.truth.num_datasets


def test_unreachable_solr_on_2_11_is_a_500_search_connection_error(preset_world: RunningWorld) -> None:
    answer = call(preset_world, one(preset_world, "search_failing_500"), "package_search", "rows=0")
    assert answer.status == 500
    assert answer.json()["error"] == {"__type": "Search Connection Error",
                                      "message": "Unable to connect to the search server"}


def test_partial_site_answers_status_show_but_not_one_list(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "partial")
    assert call(preset_world, portal, "status_show").status == 200
    assert call(preset_world, portal, "organization_list").status == 500
    assert portal.truth.num_organizations is None and portal.truth.num_groups is not None


# -- where the API is --------------------------------------------------------------------


def test_api_only_at_api_action_leaves_a_404_html_page_at_api_3(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "api_action_only")
    assert portal.truth.api_url.endswith("/api/action/")
    assert call(preset_world, portal, "status_show").status == 200
    wrong = client.get(portal.truth.api_url.replace("/api/action/", "/api/3/action/status_show"),
                       hosts_of(preset_world))
    assert wrong.status == 404 and wrong.headers["content-type"].startswith("text/html")


def test_sub_path_install_serves_the_api_under_its_prefix(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "sub_path")
    assert portal.listed_url.endswith("/data/") and portal.truth.api_url.endswith("/data/api/3/action/")
    assert call(preset_world, portal, "status_show").status == 200
    root_api = client.get(portal.listed_url.replace("/data/", "/api/3/action/status_show"), hosts_of(preset_world))
    assert root_api.status == 404


def test_dataset_page_is_a_ckan_page_of_the_same_install(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "dataset_page_listed")
    assert portal.listed_url.endswith("/dataset")
    page = client.get(portal.listed_url, hosts_of(preset_world))
    assert page.status == 200 and b"<title>Datasets - " in page.body


def test_a_site_that_is_not_ckan_answers_html_everywhere(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "not_ckan")
    for path in ("/", "/api/3/action/status_show", "/api/action/status_show"):
        answer = client.get(portal.listed_url.rstrip("/") + path, hosts_of(preset_world))
        assert answer.status == 200 and answer.body.lstrip().startswith(b"<!DOCTYPE html>")
    assert portal.truth.failure == spec.Reason(spec.NOT_CKAN)


@pytest.mark.parametrize("preset, status", [("not_found_everywhere", 404), ("server_error_everywhere", 500)])
def test_a_status_everywhere(preset_world: RunningWorld, preset: str, status: int) -> None:
    portal = one(preset_world, preset)
    for path in ("", "api/3/action/status_show", "api/action/status_show", "dataset"):
        assert client.get(portal.listed_url + path, hosts_of(preset_world)).status == status


# -- redirects, TLS, DNS ---------------------------------------------------------------------


def test_redirect_chain_ends_at_ckan_on_a_sub_path(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "redirect_chain")
    answer = client.get(portal.listed_url, hosts_of(preset_world), follow=True)
    assert answer.status == 200 and b'name="generator"' in answer.body
    assert [urls.split(":")[1] for urls in answer.history][0].startswith("//chain-")
    assert len(answer.history) == 3
    assert answer.url + "api/3/action/" == portal.truth.api_url
    first = client.get(portal.listed_url, hosts_of(preset_world))
    assert first.status == 301


def test_http_to_https_redirects_to_the_tls_port(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "http_to_https")
    answer = client.get(portal.listed_url, hosts_of(preset_world), follow=True)
    assert answer.status == 200
    assert answer.history[1].startswith("https://") and portal.truth.api_url.startswith(answer.history[1])
    assert call(preset_world, portal, "status_show").json()["success"] is True


def test_redirect_chain_can_switch_to_https(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "redirect_chain_https")
    answer = client.get(portal.listed_url, hosts_of(preset_world), follow=True)
    assert answer.status == 200 and answer.url.startswith("https://") and answer.url.endswith("/data/")


def test_moved_domain_redirects_every_path_to_the_new_name(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "moved_domain")
    old = client.get(portal.listed_url + "api/3/action/status_show?x=1", hosts_of(preset_world))
    assert old.status == 301
    assert old.headers["location"] == portal.truth.api_url + "status_show?x=1"
    assert "//new-" in portal.truth.api_url


def test_redirect_loop_never_ends(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "redirect_loop")
    with pytest.raises(RuntimeError, match="more than 20 redirects"):
        client.get(portal.listed_url, hosts_of(preset_world), follow=True)
    assert portal.truth.failure == spec.Reason(spec.REDIRECT_LOOP)


def test_https_on_the_plain_port_fails_the_handshake(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "https_on_plain_port")
    assert portal.listed_url.startswith("https://")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        client.get(portal.listed_url, hosts_of(preset_world), timeout=5)


def test_unresolvable_and_unbound_portals_have_nothing_behind_them(preset_world: RunningWorld) -> None:
    missing = one(preset_world, "unresolvable")
    with pytest.raises(client.Unresolvable):
        client.get(missing.listed_url, hosts_of(preset_world))
    refused = one(preset_world, "nothing_listening")
    with pytest.raises(ConnectionRefusedError):
        client.get(refused.listed_url, hosts_of(preset_world))


# -- broken answers ----------------------------------------------------------------------------


def test_truncated_length_closes_before_content_length(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "truncated_json_length")
    answer = call(preset_world, portal, "group_list")
    assert answer.incomplete and answer.body.startswith(b'{"help"')
    assert portal.truth.errors == {"group_list": spec.Reason(spec.CONNECTION_LOST)}


def test_truncated_close_sends_cut_json_without_a_length(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "truncated_json_close")
    answer = call(preset_world, portal, "organization_list")
    assert answer.status == 200 and not answer.incomplete
    assert "content-length" not in answer.headers and answer.headers["connection"] == "close"
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert answer.body.startswith(b'{"help"')


@pytest.mark.parametrize("preset, action, reason", [
    ("malformed_json", "organization_list", spec.MALFORMED_JSON),
    ("empty_body", "package_search", spec.EMPTY_ANSWER),
    ("html_instead_of_json", "group_list", spec.NOT_JSON),
])
def test_a_broken_200_on_one_endpoint_only(preset_world: RunningWorld, preset: str, action: str,
                                           reason: str) -> None:
    portal = one(preset_world, preset)
    broken = call(preset_world, portal, action)
    assert broken.status == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    assert call(preset_world, portal, "status_show").json()["success"] is True
    assert portal.truth.errors[action] == spec.Reason(reason)


def test_slow_endpoint_answers_after_its_delay(start_world) -> None:
    world = start_world([spec.slow_endpoint(spec.AddressPool(), endpoint="group_list", delay_s=1.0)])
    portal = world.portals[0]
    with pytest.raises(TimeoutError):
        call(world, portal, "group_list", timeout=0.3)
    started = time.monotonic()
    assert call(world, portal, "group_list", timeout=5).status == 200
    assert time.monotonic() - started >= 1.0
    assert portal.truth.errors == {"group_list": spec.Reason(spec.TIMEOUT)}


def test_rate_limited_answers_429_with_retry_after_then_works(start_world) -> None:
    world = start_world([spec.rate_limited(spec.AddressPool(), first=2)])
    portal = world.portals[0]
    answers = [call(world, portal, "status_show") for _ in range(3)]
    assert [a.status for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "1"
    world.reset()
    assert call(world, portal, "status_show").status == 429


def test_not_an_http_request_gets_a_400_at_once(preset_world: RunningWorld) -> None:
    portal = one(preset_world, "ckan")
    reply = client.raw_exchange(portal.addresses[0], preset_world.port, b"\x16\x03\x01\x00\xa5\x01\x00")
    assert reply.startswith(b"HTTP/1.1 400 ")


# -- latency, keep-alive, the request log -------------------------------------------------------


def test_latency_is_added_to_every_answer(start_world) -> None:
    world = start_world(spec.one_of_each(spec.AddressPool(), latency_ms=200)[:1])
    started = time.monotonic()
    call(world, world.portals[0], "status_show")
    assert time.monotonic() - started >= 0.2


def test_keep_alive_serves_several_requests_on_one_connection(start_world) -> None:
    import http.client

    world = start_world([spec.ckan_portal(spec.AddressPool())])
    address = world.portals[0].addresses[0]
    connection = http.client.HTTPConnection(address, world.port, timeout=5)
    for _ in range(3):
        connection.request("GET", "/api/3/action/status_show")
        assert connection.getresponse().read()
    connection.close()
    stats = world.stats(address)["hosts"][address]
    assert stats["requests"] == 3 and stats["connections_total"] == 1


def test_the_request_log_counts_paths_and_concurrency(start_world) -> None:
    portal = spec.ckan_portal(spec.AddressPool(), latency_ms=300)
    world = start_world([portal])
    address = world.portals[0].addresses[0]
    threads = [threading.Thread(target=call, args=(world, world.portals[0], "status_show")) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    call(world, world.portals[0], "package_search", "rows=0")
    stats = world.portal_stats(world.portals[0])[address]
    assert stats["paths"] == {"/api/3/action/status_show": 6, "/api/3/action/package_search": 1}
    assert stats["targets"]["/api/3/action/package_search?rows=0"] == 1
    assert stats["max_in_flight"] == 6 and stats["max_connections"] == 6
    assert stats["in_flight"] == 0 and stats["statuses"] == {"200": 7}
    world.reset()
    assert world.stats(address)["hosts"][address]["max_in_flight"] == 0


# -- the truth is what the API serves ------------------------------------------------------------


def count_by_offset(world: RunningWorld, portal: WorldPortal, action: str) -> int:
    """Count a name list with offset-only paging, which works on every version."""
    seen: list[str] = []
    while True:
        page = names_of(call_past_429(world, portal, action, f"offset={len(seen)}"))
        if not page or page[0] in seen:
            return len(seen)
        seen += page


@pytest.mark.parametrize("preset", sorted(p for p in spec.PRESETS))
def test_truth_matches_what_the_world_serves(preset_world: RunningWorld, preset: str) -> None:
    portal = one(preset_world, preset)
    truth = portal.truth
    if truth.api_url is None:
        assert truth.failure is not None
        assert all(getattr(truth, f) is None for f in spec.Truth.VALUE_FIELDS)
        return
    assert truth.failure is None
    if "status_show" not in truth.errors:
        result = call_past_429(preset_world, portal, "status_show").json()["result"]
        assert result.get("ckan_version") == truth.ckan_version
        assert result["site_title"] == truth.site_title and result["locale_default"] == truth.locale_default
    if truth.num_datasets_method == "package_search":
        count = call_past_429(preset_world, portal, "package_search", "rows=0").json()["result"]["count"]
        assert count == truth.num_datasets
    elif truth.num_datasets_method == "package_list":
        assert len(names_of(call_past_429(preset_world, portal, "package_list"))) == truth.num_datasets
    for action, field in (("organization_list", "num_organizations"), ("group_list", "num_groups")):
        if action not in truth.errors:
            assert count_by_offset(preset_world, portal, action) == getattr(truth, field)


def test_truth_mismatches_name_every_wrong_value() -> None:
    truth = spec.Truth(api_url="http://x/api/3/action/", num_organizations=2345,
                       errors={"package_list": spec.Reason(spec.CKAN_ERROR, 403)})
    item = {"api_url": "http://x/api/3/action/", "num_organizations": 1000,
            "errors": {"package_list": "ckan error: package_list: Authorization Error: Access denied (HTTP 403)",
                       "home_page": "http error: HTTP 404 at http://x/"}}
    assert truth.mismatches(item) == ["num_organizations: want 2345, got 1000"]
    assert truth.mismatches({**item, "num_organizations": "2345"}) == []
    assert truth.mismatches({**item, "num_organizations": 2345, "errors": {}}) == [
        "errors[package_list]: want ckan error (HTTP 403), got None"]


def test_judge_reports_wrong_and_missing_items(start_world) -> None:
    pool = spec.AddressPool()
    world = start_world([spec.ckan_portal(pool), spec.not_ckan(pool)])
    good, other = world.portals
    right = {"listed_url": good.listed_url, **{f: getattr(good.truth, f) for f in spec.Truth.VALUE_FIELDS}}
    assert world.judge([right]) == {other.name: ["no item"]}
    wrong = {**right, "num_groups": 0}
    assert world.judge([wrong])[good.name] == [f"num_groups: want {good.truth.num_groups}, got 0"]


def test_specs_round_trip_through_json() -> None:
    portals = spec.one_of_each(spec.AddressPool())
    again = spec.portals_from_json(spec.portals_to_json(portals))
    assert again == portals


# -- the benchmark world -----------------------------------------------------------------------


def test_make_world_is_deterministic_and_mostly_healthy() -> None:
    first, second = make_world(400, seed=3), make_world(400, seed=3)
    assert spec.portals_to_json(first) == spec.portals_to_json(second)
    assert spec.portals_to_json(make_world(400, seed=4)) != spec.portals_to_json(first)
    assert len({p.name for p in first}) == 400
    addresses = [h.address for p in first for h in p.hosts]
    assert len(set(addresses)) == len(addresses)
    failed = [p for p in first if p.truth.failure is not None or p.truth.errors]
    assert 10 <= len(failed) <= 40
    assert any((p.truth.num_organizations or 0) > 1000 for p in first)
    assert all(h.latency_ms == 100 for p in first for h in p.hosts)


def test_a_benchmark_sized_world_starts(start_world) -> None:
    world = start_world(make_world(2000, latency_ms=0))
    stats = world.stats()
    assert len(stats["hosts"]) >= 2000
    healthy = next(p for p in world.portals if p.preset == "healthy_home")
    assert call(world, healthy, "status_show").json()["success"] is True


# -- the resolver -------------------------------------------------------------------------------


def resolve(resolver: WorldResolver, name: str):
    outcome = []
    resolver.getHostByName(name).addBoth(outcome.append)
    return outcome[0]


def test_resolver_maps_test_names_from_the_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"portal-7.test": "127.1.0.9"}))
    settings = Settings({"WORLD_HOSTS_FILE": str(hosts)})
    resolver = WorldResolver.from_crawler(type("Crawler", (), {"settings": settings})(), reactor=None)
    assert resolve(resolver, "portal-7.test") == "127.1.0.9"
    assert resolve(resolver, "PORTAL-7.test.") == "127.1.0.9"
    assert resolve(resolver, "127.1.2.3") == "127.1.2.3"
    assert resolve(resolver, "localhost") == "127.0.0.1"


@pytest.mark.parametrize("name", ["missing.test", "example.org", "catalog.civicdataecosystem.org"])
def test_resolver_fails_every_other_name_without_asking_dns(name: str, monkeypatch) -> None:
    def no_dns(*args, **kwargs):
        raise AssertionError("a DNS query was attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    failure = resolve(WorldResolver(None, {"portal-1.test": "127.1.0.1"}), name)
    assert failure.check(DNSLookupError)


def test_resolver_reads_the_environment_when_the_setting_is_absent(tmp_path: Path, monkeypatch) -> None:
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"a.test": "127.1.0.5"}))
    monkeypatch.setenv("WORLD_HOSTS_FILE", str(hosts))
    resolver = WorldResolver.from_crawler(type("Crawler", (), {"settings": Settings()})(), reactor=None)
    assert resolve(resolver, "a.test") == "127.1.0.5"


def test_scrapy_crawls_test_names_through_the_resolver(start_world, tmp_path: Path) -> None:
    pool = spec.AddressPool()
    world = start_world([spec.ckan_portal(pool, use_hostname=True), spec.unresolvable(pool)])
    found, missing = world.portals
    spider = tmp_path / "probe.py"
    spider.write_text(textwrap.dedent(f"""
        import json, scrapy

        class Probe(scrapy.Spider):
            name = "probe"

            async def start(self):
                for url in {[found.truth.api_url + "status_show", missing.listed_url]!r}:
                    yield scrapy.Request(url, errback=self.failed, dont_filter=True)

            def parse(self, response):
                yield {{"url": response.url, "version": json.loads(response.text)["result"]["ckan_version"]}}

            def failed(self, failure):
                yield {{"url": failure.request.url, "error": type(failure.value).__name__}}
    """))
    out = tmp_path / "out.jsonl"
    settings = {**world.scrapy_settings(), "RETRY_ENABLED": "False", "TELNETCONSOLE_ENABLED": "False"}
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", str(out), "-s", "LOG_LEVEL=INFO"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["url"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert results[found.truth.api_url + "status_show"]["version"] == found.truth.ckan_version
    assert results[missing.listed_url]["error"] in ("DNSLookupError", "CannotResolveHostError")
    assert "DNS_RESOLVER setting is deprecated" not in done.stderr
