"""The README's pictures, taken anew: the host console, the speaker's view, the listener page and the
replay, in English and German, on a desktop (1280 x 800) and a phone (390 x 844).

    python bench/screenshots.py            # writes docs/screens/<page>-<lang>-<viewport>.png

A real `podium serve` on loopback (bench/harness.py); two WHIP speakers, Ada and Ben, say sentences
made by espeak-ng; listeners ask, comment, vote and react; then the space ends for the replay.
Not a benchmark: it measures nothing, it lives here for the harness it shares with them.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from harness import podium_server, wait_for_segments
from playwright.sync_api import Page, sync_playwright

from podium.testing.speech import speak
from podium.testing.whip_client import SampleTrack, publish

OUT = Path(__file__).resolve().parents[1] / "docs" / "screens"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
QUESTIONS = ["How did the first week go?", "Will the recording be published?", "What comes next?"]


def shoot(page: Page, name: str) -> None:
    page.wait_for_timeout(1500)  # the stage's rings and the timeline's next second
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"  {name}.png", file=sys.stderr)


async def stage_and_audience(base: str) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """A live space: Ada hosts, Ben speaks, three listeners post, vote and react."""
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        space = (await client.post("/api/spaces", json={"title": "Tonight: the interview"})).json()
        api, host = f"/api/spaces/{space['id']}", {"Authorization": f"Bearer {space['host_token']}"}
        await client.put(f"{api}/me/name", json={"name": "Ada"}, headers=host)
        invite = (await client.post(f"{api}/invites", json={"role": "speaker"}, headers=host)).json()
        ben = (await client.post(f"{api}/invites/redeem", json={"name": "Ben"}, headers=auth(invite["token"]))).json()
        voices = [
            await publish(base + space["urls"]["whip"], token, SampleTrack(speak(" ".join([text] * 12), voice=voice)))
            for token, text, voice in (
                (space["host_token"], "Good evening and welcome. Tonight we talk about the first week.", "en"),
                (ben["token"], "Thank you for having me. It was a week to remember.", "en+m3"),
            )
        ]
        await wait_for_segments(client, space["urls"]["hls"].replace("index.m3u8", "live.m3u8"), 3)
        for n, text in enumerate(QUESTIONS):
            credentials = {"username": f"listener{n}", "password": "correct horse battery"}
            await client.post("/api/accounts", json=credentials)
            session = auth((await client.post("/api/sessions", json=credentials)).json()["token"])
            body = {"kind": "question", "text": text, "client_id": f"screens-question-{n:04d}"}
            await client.post(f"{api}/posts", json=body, headers=session)
            comment = {
                "kind": "comment",
                "text": f"Listening from {['Lyon', 'Oslo', 'Graz'][n]}",
                "client_id": f"c{n:015d}",
            }
            await client.post(f"{api}/posts", json=comment, headers=session)
        for emoji in ("👏", "❤️", "👏", "🔥"):
            await client.post(f"{api}/reactions", json={"emoji": emoji})
        return space, ben, voices


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    with podium_server() as server, sync_playwright() as playwright:
        # The speakers live in a loop of their own thread; Playwright's sync API runs in this one.
        threading.Thread(target=loop.run_forever, daemon=True).start()
        run = lambda coroutine: asyncio.run_coroutine_threadsafe(coroutine, loop).result(120)  # noqa: E731
        space, ben, voices = run(stage_and_audience(server.base))
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
        )
        pages = {  # path, fragment
            "console": (space["urls"]["host"], f"#token={space['host_token']}"),
            "speaker": (f"/join/{space['id']}", ""),
            "listener": (space["urls"]["page"], ""),
        }
        for lang in ("en", "de"):
            for viewport, size in VIEWPORTS.items():
                for name, (path, fragment) in pages.items():
                    context = browser.new_context(viewport=size, locale=lang, is_mobile=viewport == "phone")
                    if name == "speaker":  # Ben's browser keeps his member token
                        keep = f"localStorage.setItem('podium.member.{space['id']}', '{ben['token']}')"
                        context.add_init_script(keep)
                    page = context.new_page()
                    page.goto(f"{server.base}{path}?lang={lang}{fragment}")
                    if name == "listener":
                        page.locator("#play").click()
                    shoot(page, f"{name}-{lang}-{viewport}")
                    context.close()
        for voice in voices:
            run(voice.close())
        httpx.post(f"{server.base}/api/spaces/{space['id']}/end", headers=auth(space["host_token"]), timeout=20)
        for lang in ("en", "de"):
            for viewport, size in VIEWPORTS.items():
                page = browser.new_context(viewport=size, locale=lang, is_mobile=viewport == "phone").new_page()
                page.goto(f"{server.base}{space['urls']['page']}?lang={lang}")
                page.locator("#play:enabled").wait_for(timeout=20000)
                shoot(page, f"replay-{lang}-{viewport}")
        browser.close()
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
