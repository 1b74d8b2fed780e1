"""Client addresses behind reverse proxies: X-Forwarded-For is believed only from TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from apps.api.auth import client_ip
from apps.core.net import client_address, parse_address

PROXIES = ["10.0.0.0/8", "192.0.2.7", "2001:db8:ffff::/48"]


@pytest.fixture
def trusted(settings) -> None:
    settings.TRUSTED_PROXIES = PROXIES


def test_without_trusted_proxies_the_peer_is_the_client(settings) -> None:
    settings.TRUSTED_PROXIES = []
    assert client_address("10.1.2.3", {"X-Forwarded-For": "198.51.100.9"}) == "10.1.2.3"


def test_untrusted_peer_cannot_choose_its_address(trusted) -> None:
    headers = {"x-forwarded-for": "10.9.9.9, 198.51.100.9"}
    assert client_address("203.0.113.5", headers) == "203.0.113.5"


def test_trusted_proxy_forwards_the_client(trusted) -> None:
    assert client_address("10.0.0.2", {"X-Forwarded-For": "198.51.100.9"}) == "198.51.100.9"


def test_spoofed_left_entries_are_never_read(trusted) -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1" itself; our proxy appended what it saw.
    headers = {"x-forwarded-for": "1.1.1.1, 198.51.100.9"}
    assert client_address("10.0.0.2", headers) == "198.51.100.9"


def test_chain_of_trusted_hops_is_walked_from_the_right(trusted) -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.9, 192.0.2.7, 10.4.4.4"}
    assert client_address("10.0.0.2", headers) == "198.51.100.9"


def test_all_hops_trusted_gives_the_leftmost(trusted) -> None:
    assert client_address("10.0.0.2", {"X-Forwarded-For": "10.7.7.7, 10.8.8.8"}) == "10.7.7.7"


def test_no_forwarded_header_from_a_trusted_proxy_gives_the_proxy(trusted) -> None:
    assert client_address("10.0.0.2", {}) == "10.0.0.2"


@pytest.mark.parametrize(
    "forwarded",
    [
        "unknown",
        "198.51.100.9, not-an-ip",
        "198.51.100.9, ",
        "198.51.100.9, 999.1.1.1",
        "198.51.100.9, garbage, 10.4.4.4",
    ],
)
def test_garbage_from_a_trusted_hop_falls_back_to_the_peer(trusted, forwarded) -> None:
    # The unparseable entry was written by a proxy we trust (it is right of any client
    # entry): the peer is all we can vouch for.
    assert client_address("10.0.0.2", {"X-Forwarded-For": forwarded}) == "10.0.0.2"


def test_garbage_left_of_the_client_is_ignored(trusted) -> None:
    headers = {"X-Forwarded-For": "<script>, 198.51.100.9"}
    assert client_address("10.0.0.2", headers) == "198.51.100.9"


def test_ipv6_ports_and_mapped_addresses(trusted) -> None:
    headers = {"X-Forwarded-For": "[2001:db8:1::5]:4431, 2001:db8:ffff::1"}
    assert client_address("::ffff:10.0.0.2", headers) == "2001:db8:1::5"
    assert client_address("10.0.0.2", {"X-Forwarded-For": "198.51.100.9:5555"}) == "198.51.100.9"
    assert parse_address("::ffff:198.51.100.9") == parse_address("198.51.100.9")


def test_header_lookup_is_case_insensitive(trusted) -> None:
    assert client_address("10.0.0.2", {"X-FORWARDED-FOR": "198.51.100.9"}) == "198.51.100.9"


def test_missing_peer_is_unknown(trusted) -> None:
    assert client_address(None, {"X-Forwarded-For": "198.51.100.9"}) == "unknown"


def test_bad_setting_is_refused(settings) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        client_address("10.0.0.2", {})


def test_setting_may_be_a_comma_separated_string(settings) -> None:
    settings.TRUSTED_PROXIES = "10.0.0.0/8, 192.0.2.7"
    assert client_address("192.0.2.7", {"X-Forwarded-For": "198.51.100.9"}) == "198.51.100.9"


def test_http_client_ip_uses_trusted_proxies(trusted) -> None:
    factory = RequestFactory()
    behind = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.9")
    assert client_ip(behind) == "198.51.100.9"
    direct = factory.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert client_ip(direct) == "203.0.113.5"
