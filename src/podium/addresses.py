"""IP addresses, the pure part: which IPv4 address an IPv6 one leads to, and which address a
request came from behind trusted proxies. Used wherever Podium
decides whether to send anything to an address someone else named (webhooks, ICE candidates)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from podium.errors import InvalidInput

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


# -- A client behind proxies (see podium.web.forwarded for why the walk goes from the right) --

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ENTRIES = 32  # proxies a request may have passed; more entries than this are not walked


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed: networks, or everyone for one hop (`*`)."""

    networks: tuple[IpNetwork, ...]
    anyone: bool = False

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """`127.0.0.1,::1,10.0.0.0/8`, or `*` alone. Raises InvalidInput naming a wrong entry."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if entries == ["*"]:
            return cls((), anyone=True)
        networks: list[IpNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise InvalidInput(
                    f"PODIUM_FORWARDED_ALLOW_IPS: {entry!r} is not an address or network "
                    "(list the proxies' addresses, e.g. 127.0.0.1,10.0.0.0/24)"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IpAddress | None) -> bool:
        if self.anyone:
            return True
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def ip_of(text: str) -> IpAddress | None:
    """An address from a header entry: `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:80`; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address: `peer` (who connected) unless it is a trusted proxy that says whom it
    forwards for. The walk stops at the first entry that is not a trusted proxy; an entry that is
    no address at all stands for nothing better than the proxy that wrote it."""
    if forwarded_for is None or not trusted.trusts(ip_of(peer)):
        return peer
    entries = [entry for entry in forwarded_for.split(",") if entry.strip()][-MAX_ENTRIES:]
    if not entries:
        return peer
    if trusted.anyone:
        entries = entries[-1:]  # one hop: only what the connecting proxy appended
    reporter = peer
    for entry in reversed(entries):
        address = ip_of(entry)
        if address is None:
            return reporter
        if not trusted.trusts(address) or trusted.anyone:
            return str(address)
        reporter = str(address)
    return reporter  # proxies all the way: the request came from a trusted machine itself
