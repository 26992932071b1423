"""By default no request made for a site or portal reaches a loopback, private,
link-local or metadata-service address, redirects included; the operator's catalog
is not portal data and is not checked. Real ``scrapy crawl sites`` runs against the
simulated world (whose hosts are all on 127.x) with ALLOW_PRIVATE_ADDRESSES off."""
from __future__ import annotations

import pytest

from tests.crawl import run_crawl
from tests.world import spec

GUARDED = {"ALLOW_PRIVATE_ADDRESSES": "false"}
ENV = {"ALLOW_PRIVATE_ADDRESSES": "false"}


@pytest.fixture(scope="module")
def guard_world(tmp_path_factory):
    from tests.world.launcher import start_world

    pool = spec.AddressPool("127.14.3.1")
    portals = [spec.ckan_portal(pool, name="loopback"), spec.redirect_chain(pool, name="chain")]
    world = start_world(portals, tmp_path_factory.mktemp("guard-world"))
    try:
        yield world
    finally:
        world.stop()


def crawl(world, tmp_path, urls, **settings):
    world.reset()
    listed = tmp_path / "urls.txt"
    listed.write_text("".join(url + "\n" for url in urls))
    return run_crawl("sites", tmp_path, args={"urls": str(listed)},
                     settings={**world.scrapy_settings(), **GUARDED, **settings}, env=ENV)


def test_loopback_private_and_metadata_addresses_are_refused_by_default(guard_world, tmp_path):
    loopback = guard_world.portal("loopback").listed_url
    result = crawl(guard_world, tmp_path, [loopback, "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data/",
                                           "http://[::1]:8080/"])
    assert result.returncode == 0, result.log[-3000:]
    failures = {item["listed_url"]: item["failure"] for item in result.items}
    assert failures[loopback].startswith("blocked: 127.14.3.1, a loopback address for http://127.14.3.1")
    assert failures["http://10.1.2.3/"].startswith("blocked: 10.1.2.3, a private address")
    assert failures["http://169.254.169.254/latest/meta-data/"].startswith(
        "blocked: 169.254.169.254, a cloud metadata service")
    assert failures["http://[::1]:8080/"].startswith("blocked: ::1, a loopback address")
    assert all("set ALLOW_PRIVATE_ADDRESSES to allow it" in reason for reason in failures.values())
    assert guard_world.stats().get("requests", 0) == 0  # nothing reached the world
    assert result.stats_value("address_guard/blocked/metadata service") == "1"


def test_a_redirect_to_a_private_address_is_refused(guard_world, tmp_path):
    chain = guard_world.portal("chain")
    first = chain.addresses[0]
    # The first host is allowed by name; it redirects to another loopback address.
    result = crawl(guard_world, tmp_path, [chain.listed_url], ALLOW_PRIVATE_ADDRESSES=f"{first}/32")
    [item] = result.items
    assert item["status"] == "failed"
    assert item["failure"].startswith("blocked: ")
    assert "a loopback address" in item["failure"] and first not in item["failure"]
    assert guard_world.stats(first).get("requests", 0) >= 1
    assert guard_world.stats().get("requests", 0) == guard_world.stats(first).get("requests", 0)


def test_allowed_networks_let_the_crawl_through(guard_world, tmp_path):
    portal = guard_world.portal("loopback")
    result = crawl(guard_world, tmp_path, [portal.listed_url], ALLOW_PRIVATE_ADDRESSES="127.14.3.0/24")
    [item] = result.items
    assert item["status"] == "ok", item


def test_the_catalog_is_operator_configuration_and_not_checked(guard_world, tmp_path):
    # The world's portal serves package_search; as the catalog it lists no sites but is read.
    portal = guard_world.portal("loopback")
    guard_world.reset()
    result = run_crawl("sites", tmp_path, args={"catalog": portal.listed_url},
                       settings={**guard_world.scrapy_settings(), **GUARDED}, env=ENV)
    assert "blocked" not in result.log, result.log[-3000:]
    assert guard_world.stats().get("requests", 0) >= 1


def test_a_name_rebound_after_the_check_never_reaches_the_internal_address(tmp_path):
    """DNS rebinding: the name answers an allowed address to the check, then an internal
    one to the connection. Nothing may reach the internal service."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    secret = "INTERNAL-SERVICE-SECRET-7f3a"
    seen: list[str] = []

    class Internal(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = (json.dumps({"success": True, "result": {"ckan_version": "2.10.1", "site_title": secret}})
                    if "/api/" in self.path else f"<html><title>{secret}</title></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if "/api/" in self.path else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.41.0.1", 0), Internal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        hosts = tmp_path / "hosts.json"
        # The first lookup (the check) gets the allowed address, every later one the internal.
        hosts.write_text(json.dumps({"rebind.test": ["127.40.0.1", "127.41.0.1"]}), encoding="utf-8")
        result = run_crawl("sites", tmp_path, args={"url": f"http://rebind.test:{port}/"},
                           settings={"TWISTED_DNS_RESOLVER": "tests.world.resolver.WorldResolver",
                                     "WORLD_HOSTS_FILE": str(hosts), "ALLOW_PRIVATE_ADDRESSES": "127.40.0.0/16"},
                           env={"ALLOW_PRIVATE_ADDRESSES": "127.40.0.0/16"})
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.log[-3000:]
    assert seen == [], "a request reached the internal service"
    [item] = result.items
    assert item["failure"].startswith("blocked: rebind.test resolved to 127.41.0.1, a loopback address when "
                                      "connecting, after it was checked (DNS rebinding?); nothing was sent")
    assert item.get("ckan_version") is None and item.get("site_title") is None
    assert secret not in result.feed.read_text(encoding="utf-8")
    assert int(result.stats_value("address_guard/rebound")) >= 1
    assert int(result.stats_value("address_guard/left_out")) >= 1
