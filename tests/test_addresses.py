"""IPv4 inside IPv6: what an address named by someone else leads to, and webhooks' public test."""

from __future__ import annotations

import ipaddress

import pytest

from podium.addresses import embedded_ipv4
from podium.domain.webhooks import is_public


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("64:ff9b::7f00:1", ["127.0.0.1"]),  # NAT64, well-known prefix
        ("2002:7f00:1::", ["127.0.0.1"]),  # 6to4
        ("::127.0.0.1", ["127.0.0.1"]),  # IPv4-compatible
        ("::ffff:10.1.2.3", ["10.1.2.3"]),  # IPv4-mapped
        ("::ffff:0:7f00:1", ["127.0.0.1"]),  # IPv4-translated
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"]),  # Teredo: server, client
        ("2001:db8::1", []),
        ("2a00:1450:4001:80b::200e", []),
    ],
)
def test_the_ipv4_address_inside_is_found(address: str, inside: list[str]) -> None:
    assert [str(v4) for v4 in embedded_ipv4(ipaddress.IPv6Address(address))] == inside


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 to a cloud's metadata service
        ("64:ff9b::808:808", True),  # NAT64 to a public address: fine
        ("64:ff9b:1::808:808", False),  # local-use NAT64: never public, wherever the IPv4 sits
        ("2002:7f00:1::", False),
        ("2002:c0a8:101::1", False),  # 6to4 to 192.168.1.1
        ("2002:808:808::", True),
        ("::127.0.0.1", False),
        ("::ffff:0:7f00:1", False),
        ("::ffff:0:a00:1", False),
        ("::ffff:127.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),
        ("2a00:1450:4001:80b::200e", True),
        ("127.0.0.1", False),
        ("8.8.8.8", True),
    ],
)
def test_webhooks_judge_an_ipv6_address_by_the_ipv4_address_it_leads_to(address: str, public: bool) -> None:
    assert is_public(address) is public
