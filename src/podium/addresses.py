"""IP addresses, the pure part: which IPv4 address an IPv6 one leads to. Used wherever Podium
decides whether to send anything to an address someone else named (webhooks, ICE candidates)."""

from __future__ import annotations

import ipaddress

# IPv6 ranges that carry an IPv4 address inside, and where it sits (the last 32 bits for all but
# 6to4 and Teredo, which `ipaddress` decodes). On a network with NAT64 or a 6to4 relay, a packet
# to one of these reaches that IPv4 address: `[64:ff9b::7f00:1]` is 127.0.0.1.
_LAST_32_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, the well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (RFC 4291, deprecated)
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
)
# NAT64 for local use (RFC 8215): where the IPv4 address sits is the operator's choice (any prefix
# length from /48 to /96), and it is never on the public internet; refused whole.
LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to through a transition mechanism (NAT64, 6to4,
    Teredo's server and client, IPv4-compatible, -mapped and -translated), if any."""
    found: list[ipaddress.IPv4Address] = []
    if any(ip in network for network in _LAST_32_BITS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found
