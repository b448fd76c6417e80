"""Issue 17, accounts, tokens and links: what a hostile stranger tries against a real `podium serve`.

Other networks are other loopback addresses (127.0.0.2, 127.0.0.3, ...): the server sees each
client's own source address, as it would see strangers on the internet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from podium.app import load_or_create_secret
from podium.domain.stage import HOST_ID, Role
from podium.domain.tokens import TokenSigner
from podium.ids import SpaceId
from podium.testing import eventually_sync
from tests.conftest import Server

PASSWORD = "correct horse battery"


@contextmanager
def network(server: Server, address: str = "127.0.0.1") -> Iterator[httpx.Client]:
    """A client whose requests come from `address` (a loopback address of its own)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=server.base, transport=transport, timeout=30) as client:
        yield client


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/sessions", json={"username": username, "password": password})


def new_space(client: httpx.Client, **fields: object) -> dict:
    created = client.post("/api/spaces", json={"title": "Hostile", **fields})
    assert created.status_code == 201, created.text
    return created.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- row 14: nobody locks an owner out from elsewhere --------------------------------------------


def test_wrong_passwords_from_elsewhere_never_lock_the_owner_out(server: Server) -> None:
    with network(server) as owner:
        assert owner.post("/api/accounts", json={"username": "target", "password": PASSWORD}).status_code == 201
    with network(server, "127.0.0.2") as attacker:
        statuses = [sign_in(attacker, "target", f"guess number {i}").status_code for i in range(12)]
        refused = sign_in(attacker, "target", "one more guess")
    # The guesser uses up their own network's attempts for this name, then gets a clear 429.
    assert statuses == [401] * 10 + [429] * 2
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "too many sign-in attempts for this account from your network" in refused.json()["error"]
    with network(server, "127.0.0.3") as second:
        assert [sign_in(second, "target", f"other guess {i}").status_code for i in range(10)] == [401] * 10
    # Twenty wrong passwords in the hour: the name is under attack, and any network is slowed to
    # one try a minute for it...
    with network(server, "127.0.0.4") as third:
        assert sign_in(third, "target", "a third network").status_code == 401
        slowed = sign_in(third, "target", "and again")
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["retry-after"]) <= 61
    assert "may try it only slowly" in slowed.json()["error"]
    # ...but never none: the owner, from their own network, signs in at once.
    with network(server) as owner:
        signed_in = sign_in(owner, "target")
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["username"] == "target"


# -- host and member tokens: rotated, and they expire --------------------------------------------


def test_an_old_host_token_is_refused_after_rotation_even_after_a_restart(server: Server) -> None:
    with network(server) as client:
        space = new_space(client)
        old = space["host_token"]
        guest = client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Mallory"}).json()["token"]
        refused = client.post(f"/api/spaces/{space['id']}/host-token", headers=bearer(guest))
        assert refused.status_code == 403 and "only the host" in refused.json()["error"]
        rotated = client.post(f"/api/spaces/{space['id']}/host-token", headers=bearer(old))
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["host_token"]
        assert new != old and rotated.json()["expires"] > time.time()

    def old_refused_new_taken() -> None:
        with network(server) as client:
            stale = client.post(f"/api/spaces/{space['id']}/end", headers=bearer(old))
            assert stale.status_code == 403 and "revoked" in stale.json()["error"]
            again = client.post(f"/api/spaces/{space['id']}/host-token", headers=bearer(old))
            assert again.status_code == 403
            me = client.get(f"/api/spaces/{space['id']}/me", headers=bearer(new))
            assert me.status_code == 200 and me.json()["role"] == "host"

    old_refused_new_taken()
    server.stop()
    server.start()
    old_refused_new_taken()  # the rotation is stored: a restart gives the old token nothing back


def test_a_host_token_past_its_lifetime_is_refused(server: Server) -> None:
    with network(server) as client:
        space = new_space(client)
        # A genuine token of this instance, issued eight days ago (the lifetime is seven).
        past = time.time() - 8 * 24 * 3600
        signer = TokenSigner(load_or_create_secret(server.data_dir), now=lambda: past)
        expired = signer.issue(SpaceId(space["id"]), HOST_ID, 0, Role.HOST)
        refused = client.get(f"/api/spaces/{space['id']}/me", headers=bearer(expired))
        assert refused.status_code == 401 and "expired" in refused.json()["error"]
        # The token the space was created with carries its expiry, past its start.
        assert client.get(f"/api/spaces/{space['id']}/me", headers=bearer(space["host_token"])).status_code == 200
        starts = datetime.now(UTC) + timedelta(days=20)
        later = new_space(client, starts_at=starts.isoformat())
        rotated = client.post(f"/api/spaces/{later['id']}/host-token", headers=bearer(later["host_token"])).json()
        assert rotated["expires"] >= starts.timestamp() + 7 * 24 * 3600 - 1


# -- sessions: signing out ends them -------------------------------------------------------------


def test_a_session_token_is_refused_after_sign_out(server: Server) -> None:
    with network(server) as client:
        space = new_space(client)
        assert client.post("/api/accounts", json={"username": "leaver", "password": PASSWORD}).status_code == 201
        leaving = sign_in(client, "leaver").json()["token"]
        staying = sign_in(client, "leaver").json()["token"]
        assert client.get("/api/sessions/me", headers=bearer(leaving)).status_code == 200
        assert client.delete("/api/sessions", headers=bearer(leaving)).json() == {"signed_out": True}
        me = client.get("/api/sessions/me", headers=bearer(leaving))
        assert me.status_code == 401 and "signed out" in me.json()["error"]
        post = {"kind": "comment", "text": "after sign-out", "client_id": "hostile-signout-1"}
        posted = client.post(f"/api/spaces/{space['id']}/posts", json=post, headers=bearer(leaving))
        assert posted.status_code == 401
        # The cookie of that session is refused too; the account's other session goes on.
        cookie = client.get("/api/sessions/me", headers={"Cookie": f"podium_session={leaving}"})
        assert cookie.status_code == 401
        assert client.get("/api/sessions/me", headers=bearer(staying)).json()["username"] == "leaver"


# -- private listener links: withdrawn -----------------------------------------------------------


def test_a_withdrawn_listener_link_no_longer_plays(server: Server) -> None:
    with network(server) as client:
        starts = datetime.now(UTC) + timedelta(minutes=5)  # within the lead: the pre-show plays
        space = new_space(client, private=True, starts_at=starts.isoformat())
        host = bearer(space["host_token"])
        link = client.post(f"/api/spaces/{space['id']}/listener-links", json={}, headers=host).json()

        def served() -> httpx.Response | None:
            playing = client.get(link["hls"])
            return None if playing.status_code == 404 else playing

        # The pre-show opens within a schedule tick of the server's.
        playing = eventually_sync(served, "the pre-show plays", timeout_s=20, poll_s=0.2)
        assert playing.status_code == 200 and playing.text.startswith("#EXTM3U")
        guest = client.post(f"/api/spaces/{space['id']}/guests", json={"name": "Mallory"}).json()["token"]
        assert client.delete(f"/api/spaces/{space['id']}/listener-links", headers=bearer(guest)).status_code == 403
        withdrawn = client.delete(f"/api/spaces/{space['id']}/listener-links", headers=host)
        assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn"] is True
        refused = client.get(link["hls"])
        assert refused.status_code == 403 and "withdrawn" in refused.json()["error"]
        fresh = client.post(f"/api/spaces/{space['id']}/listener-links", json={}, headers=host).json()
        assert client.get(fresh["hls"]).status_code == 200


# -- CSRF: bound to the session ------------------------------------------------------------------


def test_a_csrf_token_of_another_session_is_refused(server: Server) -> None:
    with network(server) as client:
        space = new_space(client)
        for name in ("victim", "mallory"):
            assert client.post("/api/accounts", json={"username": name, "password": PASSWORD}).status_code == 201
        victim = sign_in(client, "victim")
        mallory = sign_in(client, "mallory")
        url = f"/api/spaces/{space['id']}/posts"
        planted = mallory.cookies["podium_csrf"]  # a CSRF value the attacker knows (their own)
        session = victim.cookies["podium_session"]
        forged = client.post(
            url,
            json={"kind": "comment", "text": "in the victim's name", "client_id": "hostile-csrf-1"},
            headers={"Cookie": f"podium_session={session}; podium_csrf={planted}", "X-CSRF-Token": planted},
        )
        assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]
        own = victim.cookies["podium_csrf"]
        genuine = client.post(
            url,
            json={"kind": "comment", "text": "from the victim's page", "client_id": "hostile-csrf-2"},
            headers={"Cookie": f"podium_session={session}; podium_csrf={own}", "X-CSRF-Token": own},
        )
        assert genuine.status_code == 201 and genuine.json()["author"] == "victim"


# -- sign-up: says no more than it must ---------------------------------------------------------


def test_sign_up_says_only_that_a_name_is_taken_and_probing_names_is_bounded(server: Server) -> None:
    with network(server) as client:
        assert client.post("/api/accounts", json={"username": "celebrity", "password": PASSWORD}).status_code == 201
    with network(server, "127.0.0.5") as prober:
        answers = [
            prober.post("/api/accounts", json={"username": name, "password": PASSWORD})
            for name in ["celebrity", *(f"probe{i}" for i in range(9))]
        ]
        stopped = prober.post("/api/accounts", json={"username": "celebrity", "password": PASSWORD})
    assert answers[0].status_code == 409
    assert answers[0].json()["error"] == "this username is taken; choose another"
    assert [a.status_code for a in answers[1:]] == [201] * 9
    # Ten answers an hour from one network by default: a list of names is not checked wholesale.
    assert stopped.status_code == 429 and int(stopped.headers["retry-after"]) >= 1
    assert "too many accounts created from your network" in stopped.json()["error"]
