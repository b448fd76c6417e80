"""Shared fixtures: an in-process Podium for HTTP tests, and a real `podium serve` for media tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from starlette.applications import Starlette

import podium.app
from podium.app import create_app
from podium.settings import Settings
from podium.testing import eventually_sync

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

if TYPE_CHECKING:
    from tests.browser_support import Speakers


@pytest.fixture(autouse=True)
def speech_workers_only_for_captions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node spawns a speech worker (a process, a model in memory) when its first stage starts:
    only the captions tests (tests/captions*, test_*captions*) pay for that; every other node a test
    starts, in process or as `podium serve`, has captions off."""
    if "captions" in request.node.nodeid.split("::")[0]:
        return
    monkeypatch.setenv("PODIUM_CAPTIONS_ENGINE", "off")
    monkeypatch.setattr(podium.app, "caption_workers", lambda settings, captioning: (None, "off in this test"))


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    application = create_app(Settings.load({}, data_dir=tmp_path / "data"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `podium serve` process on loopback, as a user would run it."""

    data_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None
    _log: Any = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PODIUM_ICE_LOOPBACK": "only", "PODIUM_LOG_LEVEL": "info", **(self.env or {})}
        self._log = log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podium", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                self._close_log()
                raise RuntimeError(f"podium serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                return httpx.get(self.base + "/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually_sync(up, "podium serve came up", timeout_s=20, poll_s=0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None
        self._close_log()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port(), tmp_path / "podium.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def playwright() -> Iterator[Playwright]:
    """Playwright driving Debian's Chromium (browser downloads are impossible here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (scripts/setup --test installs it)")
    with sync_playwright() as instance:
        yield instance


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[Browser]:
    """Chromium whose microphone plays a 660 Hz tone."""
    from tests.browser_support import launch, write_tone_wav

    wav = tmp_path / "microphone.wav"
    write_tone_wav(wav, 660.0)
    instance = launch(playwright, wav)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def speakers() -> Iterator[Speakers]:
    from tests.browser_support import Speakers

    instance = Speakers()
    try:
        yield instance
    finally:
        instance.close()
