"""The door, in process: who is served as the stage, how many requests one address may hold, and a
client that hangs up mid-body."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from podium.admission.classes import RequestClass
from podium.admission.gate import Gate
from podium.admission.load import Capacity, Governor
from podium.admission.tickets import TicketSigner
from podium.domain.stage import Role
from podium.domain.tokens import TokenSigner
from podium.ids import MemberId, SpaceId
from podium.testing import FakeClock, wait_all_tasks_blocked
from podium.web.routes import TABLE

SECRET = "s" * 48
SPACE = SpaceId("abcdefghijkl")


class Held:
    """An application that records each request's class and holds it until released."""

    def __init__(self) -> None:
        self.classes: list[RequestClass] = []
        self.release = asyncio.Event()
        self.hang_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.classes.append(scope["state"]["request_class"])
        await self.release.wait()
        if self.hang_up:
            raise ClientDisconnect()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def door(app: Held, max_per_address: int = 2) -> tuple[Gate, Governor]:
    governor = Governor(Capacity(max_in_flight=100, max_lag_ms=1000), FakeClock())
    gate = Gate(app, governor, 1 << 20, TABLE.door, TokenSigner(SECRET), TicketSigner(SECRET), max_per_address)
    return gate, governor


async def call(gate: Gate, method: str, path: str, address: str, token: str | None = None) -> list[Message]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers, "client": (address, 1234)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await gate(scope, receive, send)
    return sent


async def test_only_a_member_token_of_the_space_makes_a_request_the_stage() -> None:
    app = Held()
    app.release.set()
    gate, _ = door(app)
    host = TokenSigner(SECRET).issue(SPACE, MemberId("host"), 0, Role.HOST)
    elsewhere = TokenSigner(SECRET).issue(SpaceId("zzzzzzzzzzzz"), MemberId("host"), 0, Role.HOST)
    forged = TokenSigner("f" * 48).issue(SPACE, MemberId("host"), 0, Role.HOST)
    path = f"/api/spaces/{SPACE}/moderation"
    for token in (host, None, "m.junk", forged, elsewhere):
        await call(gate, "POST", path, "198.51.100.7", token)
    await call(gate, "GET", "/healthz", "198.51.100.7")
    await call(gate, "OPTIONS", f"/whip/{SPACE}", "198.51.100.7")
    C = RequestClass
    assert app.classes == [C.STAGE, C.OTHER, C.OTHER, C.OTHER, C.OTHER, C.STAGE, C.STAGE]


async def test_one_address_holds_at_most_its_share_and_listening_is_not_counted() -> None:
    app = Held()
    gate, governor = door(app, max_per_address=2)
    held = [asyncio.create_task(call(gate, "POST", "/api/spaces", "2001:db8:1:2::1")) for _ in range(2)]
    await wait_all_tasks_blocked()  # both are held inside the application
    # A third from another address of the same /64: refused at once.
    refused = await call(gate, "POST", "/api/spaces", "2001:db8:1:2::99")
    assert refused[0]["status"] == 429
    assert json.loads(refused[1]["body"])["error"].startswith("too many requests at once from your network")
    assert governor.stats.crowded[RequestClass.OTHER] == 1
    # Listening is not counted; another network is not affected.
    listening = asyncio.create_task(call(gate, "GET", f"/hls/{SPACE}/live.m3u8", "2001:db8:1:2::1"))
    other = asyncio.create_task(call(gate, "POST", "/api/spaces", "2001:db8:1:3::1"))
    await wait_all_tasks_blocked()
    assert len(app.classes) == 4
    app.release.set()
    answers = await asyncio.gather(*held, listening, other)
    assert all(sent[0]["status"] == 200 for sent in answers)
    # Released: the address may send again.
    assert (await call(gate, "POST", "/api/spaces", "2001:db8:1:2::1"))[0]["status"] == 200
    assert governor.in_flight == 0


async def test_a_client_that_hangs_up_mid_body_is_counted_not_raised() -> None:
    app = Held()
    app.hang_up = True
    app.release.set()
    gate, governor = door(app)
    assert await call(gate, "POST", "/api/spaces", "198.51.100.7") == []
    assert governor.stats.abandoned[RequestClass.OTHER] == 1
    assert governor.in_flight == 0


async def test_a_content_length_that_is_not_ascii_digits_is_refused_at_the_door() -> None:
    app = Held()
    app.release.set()
    gate, _ = door(app)
    for value, status in ((b"12x", 400), ("\u00b2".encode("latin-1"), 400), (b"99999999", 413), (b"10", 200)):
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/spaces", "headers": [(b"content-length", value)]}
        await gate({**scope, "client": ("198.51.100.7", 1234)}, receive, send)
        assert sent[0]["status"] == status, value
