"""A Chromium speaker, with a fake microphone playing speech, is asked for Opus in-band FEC and
sends with it: `useinbandfec=1` in the stage's answer and in the codec its sender uses."""

from __future__ import annotations

import wave
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Playwright, expect

from podium.testing.speech import SAMPLE_RATE, speak
from tests.browser_support import launch
from tests.conftest import Server

pytestmark = pytest.mark.browser

# Keeps every RTCPeerConnection the page makes, to read its descriptions and stats (test only).
KEEP_PEERS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

READ_PEER = """
async () => {
  const pc = window.__peers.find((p) => p.connectionState === "connected");
  if (!pc) return null;
  const stats = await pc.getStats();
  let fmtp = null, sent = 0;
  stats.forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "audio") {
      sent = s.packetsSent;
      const codec = stats.get(s.codecId);
      fmtp = codec ? `${codec.mimeType} ${codec.sdpFmtpLine}` : null;
    }
  });
  return { answer: pc.remoteDescription.sdp, fmtp, sent };
}
"""


def write_speech_wav(path: Path) -> None:
    samples = speak("Good evening, and welcome to the show. Tonight we talk about networks that lose packets.")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())


def test_a_chromium_speaker_negotiates_and_sends_opus_with_in_band_fec(
    server: Server, playwright: Playwright, tmp_path: Path
) -> None:
    write_speech_wav(tmp_path / "speech.wav")
    browser = launch(playwright, tmp_path / "speech.wav")
    try:
        space = httpx.post(server.base + "/api/spaces", json={"title": "Every word"}).json()
        context = browser.new_context(viewport={"width": 1000, "height": 1200})
        context.add_init_script(KEEP_PEERS)
        host = context.new_page()
        host.goto(f"{server.base}{space['urls']['host']}#token={space['host_token']}")
        host.get_by_role("button", name="Go live").click()
        expect(host.locator("#status")).to_contain_text("live on stage", timeout=30000)
        peer = None
        for _ in range(40):  # packets flow within a second or two of going live
            peer = host.evaluate(READ_PEER)
            if peer and peer["sent"] > 50 and peer["fmtp"]:
                break
            host.wait_for_timeout(250)
        assert peer is not None, "the page made no connected peer connection"
        opus = [line for line in peer["answer"].splitlines() if line.startswith("a=rtpmap:") and "opus/48000" in line]
        assert opus, "the answer offers no Opus"
        payload_type = opus[0].split(":", 1)[1].split()[0]
        fmtp = [line for line in peer["answer"].splitlines() if line.startswith(f"a=fmtp:{payload_type} ")]
        assert fmtp and "useinbandfec=1" in fmtp[0], f"the answer's Opus parameters: {fmtp}"
        # The codec Chromium's sender uses, as its own statistics say: Opus with FEC on.
        assert peer["fmtp"].startswith("audio/opus") and "useinbandfec=1" in peer["fmtp"], peer["fmtp"]
        assert peer["sent"] > 50
    finally:
        browser.close()
