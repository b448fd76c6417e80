"""Whose address a request counts against behind the cache tier: never one the client wrote."""

from __future__ import annotations

import pytest

from podium.addresses import TrustedProxies, client_address
from podium.errors import InvalidInput
from podium.settings import Settings

NGINX = TrustedProxies.parse("127.0.0.1,::1")


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # nginx's $proxy_add_x_forwarded_for: whatever the client sent, then the address nginx saw.
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "203.0.113.66, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "1.1.1.1, 2.2.2.2, 198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "garbage, 198.51.100.7:5123", "198.51.100.7"),
        ("::1", "[2001:db8::7]:443", "2001:db8::7"),
        # A client that reached nginx from loopback is believed when it says more (trusted itself).
        ("127.0.0.1", "198.51.100.7, 127.0.0.1", "198.51.100.7"),
        # Proxies all the way: the trusted machine itself.
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        # Not an address where one was expected: the proxy that wrote it.
        ("127.0.0.1", "198.51.100.7, unknown", "127.0.0.1"),
        ("127.0.0.1", " , ", "127.0.0.1"),
        # Not from a trusted proxy: its header is the client's own word, and ignored.
        ("198.51.100.9", "198.51.100.7", "198.51.100.9"),
        ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_vouches_for(
    peer: str, header: str | None, client: str
) -> None:
    assert client_address(peer, header, NGINX) == client


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    trusted = TrustedProxies.parse("10.0.0.0/24, 127.0.0.1")
    assert client_address("127.0.0.1", "203.0.113.66, 198.51.100.7, 10.0.0.4, 10.0.0.5", trusted) == "198.51.100.7"


def test_star_believes_one_hop_only() -> None:
    anyone = TrustedProxies.parse("*")
    assert client_address("198.51.100.9", "203.0.113.66, 198.51.100.7", anyone) == "198.51.100.7"
    assert client_address("198.51.100.9", "203.0.113.66, nonsense", anyone) == "198.51.100.9"


def test_a_setting_that_is_no_address_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"'nginx\.internal' is not an address or network"):
        TrustedProxies.parse("127.0.0.1, nginx.internal")
    with pytest.raises(InvalidInput):
        TrustedProxies.parse("*, 127.0.0.1")
    with pytest.raises(InvalidInput, match="PODIUM_FORWARDED_ALLOW_IPS"):
        Settings.load({"PODIUM_FORWARDED_ALLOW_IPS": "nginx.internal"})
