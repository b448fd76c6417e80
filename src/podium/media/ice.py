"""Which addresses ICE offers. aioice never offers loopback, so a speaker on the same machine
(development, tests, CI) could not reach the stage; PODIUM_ICE_LOOPBACK opens that way in."""

from __future__ import annotations

import time
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from podium.media.ice_servers import IceServer, with_credentials

_original_get_host_addresses = aioice.ice.get_host_addresses
# The STUN/TURN servers every peer connection of this process uses (PODIUM_ICE_SERVERS), and the
# TURN shared secret its own credentials are made from (PODIUM_TURN_SECRET), if any.
_servers: tuple[IceServer, ...] = ()
_turn_secret = ""
_turn_lifetime_s = 3600
TURN_USER = "podium"  # the stage's own TURN user name, after the expiry


def configure(mode: str, servers: Sequence[IceServer] = (), turn_secret: str = "", turn_lifetime_s: int = 3600) -> None:
    """mode "0": interface addresses (aiortc's default); "1": those and loopback; "only": loopback alone.
    `servers`: the STUN/TURN servers peer connections gather candidates from; with `turn_secret`,
    each peer connection gets TURN credentials of its own, made when it is.

    aioice reads its address list through a module-level function; Podium swaps that function,
    for the whole process, once at start-up."""
    global _servers, _turn_secret, _turn_lifetime_s
    _servers = tuple(servers)
    _turn_secret, _turn_lifetime_s = turn_secret, turn_lifetime_s

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return offered_addresses(mode, use_ipv4, use_ipv6)

    aioice.ice.get_host_addresses = _original_get_host_addresses if mode == "0" else host_addresses


def offered_addresses(mode: str, use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
    """The addresses ICE offers as host candidates in `mode`, as `configure(mode)` makes aioice see them."""
    loopback = (["127.0.0.1"] if use_ipv4 else []) + (["::1"] if use_ipv6 else [])
    if mode == "only":
        return loopback[:1]
    found = list(_original_get_host_addresses(use_ipv4, use_ipv6))
    return found + loopback if mode == "1" else found


def rtc_configuration() -> RTCConfiguration:
    # No STUN/TURN servers by default: Podium contacts no outside host unless configured to.
    # aiortc uses the first STUN and the first TURN server it is given (browsers use them all).
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=server.uri, username=server.username or None, credential=server.credential or None)
            for server in with_credentials(_servers, _turn_secret, TURN_USER, time.time(), _turn_lifetime_s)
        ]
    )
