"""The subtitles rendition in a real player: Chromium plays a space's stream with hls.js (its full
build, which reads WebVTT renditions; the pages use the light build) and finds the captions as
cues of a text track, voiced by their speakers, at the times they were said.

The node runs in this process (uvicorn on loopback, on a loop of its own), so that captions reach
it through the service's real entry point, `Captioning.on_caption`; the host publishes a tone
over WHIP, which is what makes the space live."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Coroutine, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from playwright.sync_api import Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from podium.app import create_app, served
from podium.captions.engine import Caption
from podium.settings import Settings
from podium.testing import eventually_sync
from podium.testing.whip_client import Publisher, SampleTrack, publish, tone
from tests.browser_support import launch, write_tone_wav
from tests.captions_delivery.support import Recorder
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.media]

T = TypeVar("T")
HLS_JS = Path(__file__).resolve().parents[2] / "node_modules" / "hls.js" / "dist" / "hls.min.js"

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>hls.js full build</title>
<video id="player" muted playsinline></video>
<script src="hls.min.js"></script>
<script>
  const video = document.getElementById("player");
  const hls = new Hls({ enableWebVTT: true, renderTextTracksNatively: true });
  // The rendition is not a default one (DEFAULT=NO): the viewer switches it on, as the player's
  // own captions menu does (hls.js follows the text track's mode).
  video.textTracks.addEventListener("addtrack", (event) => { event.track.mode = "showing"; });
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  window.errors = [];
  hls.on(Hls.Events.ERROR, (_event, data) => window.errors.push(data.details));
  hls.loadSource(new URLSearchParams(location.search).get("src"));
  hls.attachMedia(video);
  window.cues = () => Array.from(video.textTracks).flatMap((track) =>
    Array.from(track.cues || []).map((cue) => ({
      text: cue.text,
      start: cue.startTime,
      end: cue.endTime,
      voice: cue.getCueAsHTML().firstChild?.title ?? null,
      label: track.label,
      language: track.language,
    })));
</script>
"""


class Node:
    """A Podium node on loopback in a thread of its own (its loop also runs the WHIP publisher)."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="node", daemon=True)
        self.app = create_app(Settings.load({}, data_dir=data_dir, ice_loopback="only"))
        self.app.state.captioning.use(Recorder())
        self.port = free_port()
        config = uvicorn.Config(served(self.app), "127.0.0.1", self.port, log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread.start()
        self.serving = asyncio.run_coroutine_threadsafe(self.server.serve(), self.loop)
        eventually_sync(lambda: self.server.started, "the node came up", timeout_s=20)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def say(self, caption: Caption) -> None:
        async def said() -> None:
            self.app.state.captioning.on_caption(caption)
            await self.app.state.captioning.stored()

        self.run(said())

    def close(self) -> None:
        self.server.should_exit = True
        self.serving.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    instance = Node(tmp_path / "data")
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def player_site(tmp_path: Path) -> Iterator[str]:
    """The test's own page and hls.js's full build, from a server of the test's (not the app)."""
    if not HLS_JS.exists():
        pytest.fail(f"hls.js is not installed at {HLS_JS} (npm ci installs it)")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE, encoding="utf-8")
    (site / "hls.min.js").write_bytes(HLS_JS.read_bytes())
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="player-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_hls_js_shows_the_captions_as_voiced_cues_of_the_ended_stream(
    node: Node, player_site: str, playwright: Playwright, tmp_path: Path
) -> None:
    space = httpx.post(node.base + "/api/spaces", json={"title": "Captioned on air"}).json()
    host = {"Authorization": f"Bearer {space['host_token']}"}
    speaker: Publisher = node.run(
        publish(node.base + space["urls"]["whip"], space["host_token"], SampleTrack(tone(440)))
    )
    try:
        eventually_sync(lambda: httpx.get(node.base + f"/api/spaces/{space['id']}").json()["state"] == "live", "live")
        node.say(Caption(space["id"], "host", "Ada", "host.1", 1.0, 2.5, "Welcome to the show", True))
        node.say(Caption(space["id"], "ben", "Ben", "ben.1", 3.0, 4.5, "Glad to be here & <ready>", True))

        def recorded_s() -> float:
            playlist = httpx.get(node.base + f"/hls/{space['id']}/live.m3u8").text
            return sum(float(line[8:].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:"))

        eventually_sync(lambda: recorded_s() > 6.5, "six seconds recorded", timeout_s=30)
    finally:
        node.run(speaker.close())
    assert httpx.post(node.base + f"/api/spaces/{space['id']}/end", headers=host).status_code == 200

    wav = tmp_path / "silence.wav"
    write_tone_wav(wav, 1.0, seconds=1.0)
    browser = launch(playwright, wav)
    try:
        page = browser.new_page()
        page.goto(f"{player_site}?src={node.base}{space['urls']['hls']}")
        try:
            page.wait_for_function("window.cues().length >= 2", timeout=30_000)
        except PlaywrightTimeout:
            raise AssertionError(f"no cues; hls.js errors: {page.evaluate('window.errors')}") from None
        cues = sorted(page.evaluate("window.cues()"), key=lambda cue: cue["start"])
    finally:
        browser.close()
    assert [(cue["voice"], cue["label"], cue["language"]) for cue in cues] == [
        ("Ada", "Captions (en)", "en"),
        ("Ben", "Captions (en)", "en"),
    ]
    assert "Welcome to the show" in cues[0]["text"] and "Glad to be here &amp; &lt;ready&gt;" in cues[1]["text"]
    # On the audio's own time: the replay starts with the recording, so the words are where they were said.
    assert abs(cues[0]["start"] - 1.0) < 0.15 and abs(cues[0]["end"] - 2.5) < 0.15
    assert abs(cues[1]["start"] - 3.0) < 0.15
