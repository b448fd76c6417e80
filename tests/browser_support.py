"""Helpers for the browser tests: tones to speak and Chromium to hear them."""

from __future__ import annotations

import asyncio
import math
import struct
import threading
import wave
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, Playwright

from podium.testing.whip_client import Publisher, SampleTrack, publish, tone
from tests.conftest import CHROMIUM, Server

T = TypeVar("T")


def write_tone_wav(path: Path, frequency: float, seconds: float = 10.0, rate: int = 48000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(0.5 * 32767 * math.sin(2 * math.pi * frequency * n / rate)))
            for n in range(int(seconds * rate))
        )
        out.writeframes(frames)


def launch(playwright: Playwright, wav: Path) -> Browser:
    """Headless Chromium whose microphone plays `wav`."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


class Speakers:
    """An asyncio loop in a thread of its own: the aiortc speakers live there, while the test drives
    Chromium with Playwright's sync API (which refuses to run inside an event loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="speakers", daemon=True)
        self.thread.start()
        self.publishers: list[Publisher] = []

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 90) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def speak(self, server: Server, whip: str, token: str, hz: float) -> Publisher:
        publisher = self.run(publish(server.base + whip, token, SampleTrack(tone(hz))))
        self.publishers.append(publisher)
        return publisher

    def leave(self, publisher: Publisher) -> None:
        self.publishers.remove(publisher)
        self.run(publisher.close())

    def close(self) -> None:
        for publisher in list(self.publishers):
            self.run(publisher.pc.close())  # a closed connection is enough: the stage drops it
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
