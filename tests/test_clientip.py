"""The client's address: the socket's unless the site says which proxy header to believe."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from django_callauth.guards.clientip import client_ip, rate_limit_key


def request(remote: str = "10.0.0.9", **headers: str) -> Any:
    return RequestFactory().get("/", REMOTE_ADDR=remote, headers=headers)


def test_remote_addr_by_default_whatever_the_client_claims() -> None:
    spoofed = request(**{"X-Forwarded-For": "198.51.100.1", "X-Real-IP": "198.51.100.2"})
    assert client_ip(spoofed) == "10.0.0.9"


@pytest.mark.parametrize(
    ("forwarded", "proxies", "expected"),
    [
        ("203.0.113.5", 1, "203.0.113.5"),
        # The client may prepend anything; only the entry our one proxy appended counts.
        ("1.1.1.1, 203.0.113.5", 1, "203.0.113.5"),
        ("1.1.1.1, 203.0.113.5, 10.0.0.2", 2, "203.0.113.5"),
        (" 203.0.113.5 ,10.0.0.2 ", 2, "203.0.113.5"),
        # Fewer entries than proxies: the request did not come through them all.
        ("203.0.113.5", 2, "10.0.0.9"),
        ("", 1, "10.0.0.9"),
    ],
)
def test_trusted_proxy_count_takes_the_entry_the_outermost_proxy_added(
    settings: Any, forwarded: str, proxies: int, expected: str
) -> None:
    settings.CALLAUTH_TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request(**{"X-Forwarded-For": forwarded})) == expected


def test_trusted_header(settings: Any) -> None:
    settings.CALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"
    assert client_ip(request(**{"X-Real-IP": " 203.0.113.5 ", "X-Forwarded-For": "1.1.1.1"})) == "203.0.113.5"
    assert client_ip(request()) == "10.0.0.9"  # not through the proxy: the socket's address


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("", "unknown"),
        ("not an address", "unknown"),
        ("203.0.113.5, 1.1.1.1", "unknown"),
    ],
)
def test_rate_limit_key_counts_ipv6_per_64(address: str, key: str) -> None:
    assert rate_limit_key(address) == key
