"""A node in process with captions, and what the tests say to it.

The caption workers' seam is recorded here (`Recorder`): these tests are about what happens to
captions once made (stored, told, served, kept private), so captions come in through the real
entry point the workers call, `Captioning.on_caption`, and the frames the stage hands over are
recorded. Recognition itself (real engines, real speech) is the engines' tests' business.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
from starlette.applications import Starlette

from podium.app import create_app
from podium.captions.engine import Caption
from podium.captions.service import Captioning
from podium.settings import Settings
from podium.testing import FakeClock


@dataclass
class Recorder:
    """The caption workers' seam, recorded: what the stage fed, who left, which spaces ended."""

    engine_name: str = "recorder"
    languages: tuple[str, ...] = ("en", "de")
    partials: bool = True
    state: str = "live"
    detail: str = ""
    frames: deque[tuple[str, str, str, str, float, int]] = field(default_factory=lambda: deque(maxlen=5000))
    gone: list[tuple[str, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    running: bool = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def frame(self, space: str, speaker: str, name: str, language: str, at_s: float, samples: Any) -> None:
        assert isinstance(samples, np.ndarray) and samples.dtype == np.int16
        self.frames.append((space, speaker, name, language, at_s, len(samples)))

    def speaker_gone(self, space: str, speaker: str) -> None:
        self.gone.append((space, speaker))

    def end_space(self, space: str) -> None:
        self.ended.append(space)

    def status(self, space: str) -> Any:
        return SimpleNamespace(state=self.state, detail=self.detail, captioned=[], waiting=[])


@dataclass
class Node:
    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock
    recorder: Recorder | None

    @property
    def captioning(self) -> Captioning:
        found: Captioning = self.app.state.captioning
        return found

    async def create(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/api/spaces", json={"title": "Captioned", **body})
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def go_live(self, space: dict[str, Any]) -> None:
        """What the host's first WHIP publish does: a stage, and the space live."""
        stages = self.app.state.stages
        live = await self.app.state.directory.get_space(space["id"])
        await stages.start_stage(live)
        await stages.went_live(live)

    async def end(self, space: dict[str, Any]) -> None:
        response = await self.client.post(f"/api/spaces/{space['id']}/end", headers=host(space))
        assert response.status_code == 200, response.text

    async def say(
        self,
        space: dict[str, Any],
        utterance: str,
        start_s: float,
        end_s: float,
        text: str,
        *,
        speaker: str = "host",
        name: str = "Ada",
        final: bool = True,
    ) -> None:
        """A caption as the workers give it, through the service's entry point; returns once stored."""
        self.captioning.on_caption(Caption(space["id"], speaker, name, utterance, start_s, end_s, text, final))
        await self.captioning.stored()


def host(space: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {space['host_token']}"}


@asynccontextmanager
async def node(data_dir: Path, *, workers: bool = True, **settings: Any) -> AsyncIterator[Node]:
    clock = FakeClock(datetime.now(UTC), autojump=True)
    app = create_app(Settings.load({}, data_dir=data_dir, **settings), clock)
    recorder = Recorder() if workers else None
    if recorder is not None:
        app.state.captioning.use(recorder)
    else:
        app.state.captioning.use(None, "captions are switched off (PODIUM_CAPTIONS_ENGINE=off)")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as client:
            yield Node(app, client, clock, recorder)
