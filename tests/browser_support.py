"""Helpers for the browser tests: tones to speak and Chromium to hear them."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

from playwright.sync_api import Browser, Playwright

from tests.conftest import CHROMIUM


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
