"""`podium demo`: Podium with a live space in which two synthetic voices talk and audience bots ask,
comment, vote and react, so that a newcomer without a microphone hears and sees it working."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np
import uvicorn

from podium.app import create_asgi
from podium.audience.timeline import REACTIONS
from podium.errors import PodiumError
from podium.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Samples
from podium.settings import Settings
from podium.testing.speech import speak
from podium.testing.whip_client import Publisher, SampleSource, SampleTrack, publish

# American voices: the captions' default engine (pocketsphinx, an en-US model) hears them best.
VOICES = {"Ada": "en-us+f2", "Ben": "en-us+m3"}
SCRIPT = (
    ("Ada", "Hello, and welcome to Podium. I am Ada, your host, and this is a live space."),
    ("Ben", "And I am Ben. We are synthetic voices, talking live from your own computer."),
    ("Ada", "Hosts and guests speak on a stage, straight from the browser. Listeners just open a link."),
    ("Ben", "They ask questions and vote for the best ones. Our audience bots are doing it right now."),
    ("Ada", "When you are ready, run podium serve, and host a space of your own. We start again soon."),
)
# The bots' turns, one every STEP_S, over and over: within the default limits on posts (per account
# 10 a minute, per address 120 a minute), votes (60 a minute) and reactions (20 per 10 s per address).
AUDIENCE = (
    ("maya", "question", "How many listeners can one space hold?"),
    ("theo", "comment", "Hello from Lyon! Clear sound, and no app needed."),
    ("sam", "question", "Is there a recording after the space ends?"),
)
STEP_S = 3.0
PAUSE = np.zeros(30 * FRAME_SAMPLES, dtype=np.int16)  # 0.6 s between lines


def conversation() -> dict[str, Samples]:
    """Each voice's track: its lines where it speaks, silence while the other does."""
    tracks: dict[str, list[Samples]] = {name: [] for name in VOICES}
    for speaker, line in SCRIPT:
        said = np.concatenate([speak(line, voice=VOICES[speaker]), PAUSE])
        for name, parts in tracks.items():
            parts.append(said if name == speaker else np.zeros_like(said))
    return {name: np.concatenate(parts) for name, parts in tracks.items()}


def looped(samples: Samples, origin: float) -> SampleSource:
    """`samples` over and over, placed on the clock since `origin` (time.monotonic()) by the first
    frame sent: tracks that start at different times still take turns."""
    frames = len(samples) // FRAME_SAMPLES
    skip: list[int] = []

    def frame(n: int) -> Samples:
        if not skip:
            skip.append(round((time.monotonic() - origin) * SAMPLE_RATE / FRAME_SAMPLES) - n)
        start = (n + skip[0]) % frames * FRAME_SAMPLES
        return samples[start : start + FRAME_SAMPLES]

    return frame


class DemoServer(uvicorn.Server):
    """uvicorn whose Ctrl-C or SIGTERM asks the demo to stop: the space ends before the server does."""

    stopping = asyncio.Event()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()


async def call(http: httpx.AsyncClient, method: str, url: str, token: str = "", **body: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return (await http.request(method, url, json=body, headers=headers)).raise_for_status().json()


async def audience(http: httpx.AsyncClient, api: str) -> None:
    """The bots: accounts, then the script's turns; each turn also votes for a question and reacts."""
    tokens: dict[str, str] = {}
    for name in dict.fromkeys(bot for bot, _, _ in AUDIENCE):
        credentials = {"username": f"{name}-{secrets.token_hex(2)}", "password": secrets.token_urlsafe(16)}
        await call(http, "POST", "/api/accounts", **credentials)
        tokens[name] = (await call(http, "POST", "/api/sessions", **credentials))["token"]
    questions: list[str] = []
    for step in itertools.count():
        name, kind, text = AUDIENCE[step % len(AUDIENCE)]
        posted = await call(
            http, "POST", f"{api}/posts", tokens[name], kind=kind, text=text, client_id=secrets.token_hex(8)
        )
        if kind == "question":
            questions.append(posted["id"])
        # Refused (409) when this bot voted for it already: fine, the next turn votes for another.
        vote = f"{api}/questions/{questions[step * 7 % len(questions)]}/vote"
        await http.post(vote, headers={"Authorization": f"Bearer {tokens[name]}"})
        await http.post(f"{api}/reactions", json={"emoji": REACTIONS[step % len(REACTIONS)]})
        await asyncio.sleep(STEP_S)


async def demo(settings: Settings) -> None:
    server = DemoServer(uvicorn.Config(create_asgi(settings), settings.host, settings.port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    print("  making Ada's and Ben's voices with espeak-ng", flush=True)
    voices = asyncio.create_task(asyncio.to_thread(conversation))
    speakers: list[Publisher] = []
    space: dict[str, Any] = {}
    bots: asyncio.Task[None] | None = None
    async with httpx.AsyncClient(base_url=settings.own_url, timeout=30) as http:
        try:
            while not server.started:
                await asyncio.sleep(0.05)
            space = await call(http, "POST", "/api/spaces", title="Welcome to Podium")
            api, host = f"/api/spaces/{space['id']}", space["host_token"]
            await call(http, "PUT", f"{api}/me/name", host, name="Ada")
            invite = await call(http, "POST", f"{api}/invites", host, role="speaker")
            ben = await call(http, "POST", f"{api}/invites/redeem", invite["token"], name="Ben")
            print("  Podium is up and the space is made; Ada and Ben are coming on stage", flush=True)
            tracks, origin, whip = await voices, time.monotonic(), settings.own_url + space["urls"]["whip"]
            for name, token in (("Ada", host), ("Ben", ben["token"])):
                speakers.append(await publish(whip, token, SampleTrack(looped(tracks[name], origin))))
            bots = asyncio.create_task(audience(http, api))
            print(f"Listen: {settings.own_url}{space['urls']['page']}", flush=True)
            print(f"Host console: {settings.own_url}{space['urls']['host']}#token={host}", flush=True)
            print("  audience bots ask, comment, vote and react every few seconds. Ctrl-C stops the demo.", flush=True)
            await server.stopping.wait()
        finally:
            print("  stopping: the speakers leave, the space ends", flush=True)
            if bots is not None:
                bots.cancel()
            for speaker in speakers:
                await speaker.close()
            if space:
                await call(http, "POST", f"{api}/end", host)
            server.should_exit = True
            await serving


def run(args: argparse.Namespace) -> int:
    if shutil.which("espeak-ng") is None:
        raise PodiumError("the demo's voices need espeak-ng: install the Debian package (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as scratch:
        data_dir: Path = args.data_dir or Path(scratch)
        where = "" if args.data_dir else ", a temporary folder removed at exit"
        # PODIUM_* variables are not read: the demo never touches a real deployment's database.
        settings = Settings.load({}, host=args.host, port=args.port, data_dir=data_dir, ice_loopback="only")
        print(f"Podium demo on {settings.own_url}/ (data in {data_dir}{where})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(demo(settings))
    return 0
