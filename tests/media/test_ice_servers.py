"""TURN credentials from a shared secret (the TURN REST scheme coturn's use-auth-secret checks)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from podium.errors import InvalidInput
from podium.media import ice
from podium.media.ice_servers import parse_ice_servers, turn_rest_credentials, with_credentials
from podium.settings import Settings


def test_credentials_are_the_expiry_and_member_signed_with_the_secret() -> None:
    username, password = turn_rest_credentials("north", "m0123456789abcdef", 1_700_000_000.7, 3600)
    assert username == "1700003600:m0123456789abcdef"
    # coturn's check, written out: base64(HMAC-SHA1(static-auth-secret, username)).
    assert password == base64.b64encode(hmac.new(b"north", username.encode(), hashlib.sha1).digest()).decode()
    assert turn_rest_credentials("south", "m0123456789abcdef", 1_700_000_000, 3600)[1] != password


def test_with_a_secret_turn_entries_need_no_password_and_each_member_gets_their_own() -> None:
    with pytest.raises(InvalidInput, match="PODIUM_TURN_SECRET"):
        Settings.load({"PODIUM_ICE_SERVERS": "turn:turn.example.org"})
    settings = Settings.load(
        {"PODIUM_ICE_SERVERS": "stun:stun.example.org,turn:old:pw@turn.example.org", "PODIUM_TURN_SECRET": "s"}
    )
    servers = settings.ice_server_list()
    ann = with_credentials(servers, "s", "ann", 1000, 60)
    assert ann[0] == servers[0]  # STUN: nothing to add
    assert (ann[1].username, ann[1].uri) == ("1060:ann", "turn:turn.example.org:3478?transport=udp")
    assert ann[1].credential != "pw" and with_credentials(servers, "s", "bob", 1000, 60)[1].username == "1060:bob"
    assert with_credentials(servers, "", "ann", 1000, 60) == servers  # no secret: the entries as written
    assert parse_ice_servers("turns:turn.example.org:443", shared_secret=True)[0].username == ""


def test_the_stages_own_peer_connections_get_fresh_credentials() -> None:
    try:
        ice.configure("0", parse_ice_servers("turn:127.0.0.1:3478", shared_secret=True), "s", 600)
        (server,) = ice.rtc_configuration().iceServers or []
        expiry, user = str(server.username).split(":")
        assert user == ice.TURN_USER and int(expiry) > 600
        assert (
            server.credential
            == base64.b64encode(hmac.new(b"s", str(server.username).encode(), hashlib.sha1).digest()).decode()
        )
    finally:
        ice.configure("0")


@pytest.mark.parametrize("lifetime", ["10", "9999999"])
def test_a_credential_lifetime_out_of_bounds_is_refused(lifetime: str) -> None:
    with pytest.raises(InvalidInput, match="PODIUM_TURN_CREDENTIAL_LIFETIME_S"):
        Settings.load({"PODIUM_TURN_CREDENTIAL_LIFETIME_S": lifetime})
