"""Which addresses ICE offers. aioice never offers loopback, so a speaker on the same machine
(development, tests, CI) could not reach the stage; PODIUM_ICE_LOOPBACK opens that way in."""

from __future__ import annotations

import aioice.ice
from aiortc import RTCConfiguration

_original_get_host_addresses = aioice.ice.get_host_addresses


def configure(mode: str) -> None:
    """mode "0": interface addresses (aiortc's default); "1": those and loopback; "only": loopback alone.

    aioice reads its address list through a module-level function; Podium swaps that function,
    for the whole process, once at start-up."""

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        loopback = (["127.0.0.1"] if use_ipv4 else []) + (["::1"] if use_ipv6 else [])
        if mode == "only":
            return loopback[:1] or loopback
        return list(_original_get_host_addresses(use_ipv4, use_ipv6)) + loopback

    aioice.ice.get_host_addresses = _original_get_host_addresses if mode == "0" else host_addresses


def rtc_configuration() -> RTCConfiguration:
    # No STUN/TURN servers by default: Podium contacts no outside host unless configured to.
    return RTCConfiguration(iceServers=[])
