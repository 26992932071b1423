"""Which addresses resource downloads may connect to."""
from __future__ import annotations

import ipaddress

import pytest

from ckancrawl.resources.address_guard import AddressPolicy, classify


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
        ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd12::1", "private"),
        ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "metadata service"), ("fd00:ec2::254", "metadata service"),
        ("100.100.100.200", "metadata service"), ("168.63.129.16", "metadata service"),
        ("::ffff:10.1.2.3", "private"), ("::ffff:169.254.169.254", "metadata service"),
        ("2002:7f00:1::1", "loopback"), ("64:ff9b::a00:1", "private"),
        ("93.184.216.34", None), ("2606:4700:4700::1111", None),
    ],
)
def test_addresses_are_classified(address, kind):
    assert classify(ipaddress.ip_address(address)) == kind


def test_by_default_only_public_addresses_are_allowed():
    policy = AddressPolicy.from_setting(False)
    assert policy.refusal("93.184.216.34") is None
    assert policy.refusal("10.0.0.1") == "10.0.0.1, a private address"
    assert policy.refusal("::ffff:10.0.0.1") == "::ffff:a00:1 (10.0.0.1), a private address"
    assert "metadata service" in policy.refusal("169.254.169.254")


def test_true_allows_private_addresses_but_not_metadata_services():
    policy = AddressPolicy.from_setting("true")
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("10.0.0.1") is None
    assert policy.refusal("169.254.169.254") is not None


def test_a_list_of_networks_allows_exactly_those():
    policy = AddressPolicy.from_setting("127.0.0.1/32, ::1/128")
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::1") is None
    assert policy.refusal("127.0.0.2") == "127.0.0.2, a loopback address"
    assert AddressPolicy.from_setting(["169.254.169.254/32"]).refusal("169.254.169.254") is None


@pytest.mark.parametrize("value", [None, "", "false", "0", False])
def test_false_values(value):
    assert AddressPolicy.from_setting(value) == AddressPolicy()


def test_a_wrong_setting_is_an_error():
    with pytest.raises(ValueError, match="RESOURCE_ALLOW_PRIVATE"):
        AddressPolicy.from_setting("localhost")
