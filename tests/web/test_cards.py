"""Link previews of a space page: Open Graph, a Twitter player card and oEmbed discovery, read the
way a crawler reads them (the HTML head, parsed, not searched as text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette

from podium.app import create_app
from podium.domain.space import Space, SpaceState
from podium.ids import new_space_id
from podium.settings import Settings

HOSTILE = """Ada's "talk" </title><script>alert('x')</script> & more"""


class Head(HTMLParser):
    """The <meta> and <link> elements of a page and its <title>, as a crawler collects them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, list[str]] = {}
        self.links: list[dict[str, str]] = []
        self.title = ""
        self.scripts_in_head = 0
        self._in_title = False
        self._in_head = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and self._in_head:
            key = values.get("property") or values.get("name")
            if key:
                self.meta.setdefault(key, []).append(values.get("content", ""))
        elif tag == "link" and self._in_head:
            self.links.append(values)
        elif tag == "title":
            self._in_title = True
        elif tag == "script" and self._in_head and "src" not in values and values.get("type") != "application/json":
            self.scripts_in_head += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self._in_head = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def one(self, key: str) -> str:
        values = self.meta.get(key, [])
        assert len(values) == 1, f"{key}: {values}"
        return values[0]


def read_head(html: str) -> Head:
    head = Head()
    head.feed(html)
    head.close()
    return head


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


async def create(client: httpx.AsyncClient, title: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/spaces", json={"title": title, **extra})
    assert response.status_code == 201, response.text
    space: dict[str, Any] = response.json()
    return space


async def stored(app: Starlette, state: SpaceState, *, private: bool = False, record: bool = True) -> Space:
    """A space in the state a host would have brought it to, as the database holds it."""
    now = datetime.now(UTC)
    space = Space(
        new_space_id(),
        "Stored talk",
        state,
        created_at=now - timedelta(hours=2),
        started_at=now - timedelta(hours=1),
        ended_at=now if state is SpaceState.ENDED else None,
        record=record,
        private=private,
    )
    await app.state.space_store.add(space)
    return space


async def test_a_space_page_is_a_valid_open_graph_object_with_the_spaces_title(client: httpx.AsyncClient) -> None:
    space = await create(client, HOSTILE, starts_at="2027-03-02T19:30:00Z")
    response = await client.get(f"/s/{space['id']}", headers={"Accept-Language": "en-US"})
    assert response.status_code == 200
    head = read_head(response.text)
    page_url = f"http://podium.test/s/{space['id']}"
    # The four properties Open Graph requires, the image and the address absolute.
    assert head.one("og:title") == HOSTILE
    assert head.one("og:type") == "website"
    assert head.one("og:url") == page_url
    image = head.one("og:image")
    assert is_absolute(image) and image.endswith(".png")
    assert head.one("og:image:width") == "1200" and head.one("og:image:height") == "630"
    assert head.one("og:site_name") == "Podium"
    assert head.one("og:locale") == "en_US" and head.meta["og:locale:alternate"] == ["de_DE"]
    assert (
        head.one("og:description") == "Live on 2027-03-02 19:30 UTC. Listen in your browser, no app or account needed."
    )
    # The title is the space's, escaped: nothing in it opened an element or ended the head's title.
    assert head.title == f"{HOSTILE} — Podium"
    assert head.scripts_in_head == 0 and "<script>alert" not in response.text
    # Nothing is playing yet: no audio to point at.
    assert "og:audio" not in head.meta
    # The image it names is there, a PNG of the announced size.
    picture = await client.get(urlsplit(image).path)
    assert picture.status_code == 200 and picture.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        int.from_bytes(picture.content[16:20], "big") == 1200 and int.from_bytes(picture.content[20:24], "big") == 630
    )


async def test_a_public_space_has_a_player_card_and_oembed_discovery(client: httpx.AsyncClient) -> None:
    space = await create(client, HOSTILE)
    head = read_head((await client.get(f"/s/{space['id']}")).text)
    page_url = f"http://podium.test/s/{space['id']}"
    assert head.one("twitter:card") == "player"
    assert head.one("twitter:title") == HOSTILE
    assert head.one("twitter:player") == f"http://podium.test/embed/{space['id']}"
    assert int(head.one("twitter:player:width")) > 0 and int(head.one("twitter:player:height")) > 0
    assert is_absolute(head.one("twitter:image"))
    oembed = [link for link in head.links if link.get("type") == "application/json+oembed"]
    assert len(oembed) == 1 and oembed[0]["rel"] == "alternate" and oembed[0]["title"] == HOSTILE
    address = urlsplit(oembed[0]["href"])
    assert f"{address.scheme}://{address.netloc}{address.path}" == "http://podium.test/oembed"
    assert parse_qs(address.query) == {"url": [page_url], "format": ["json"]}


async def test_a_private_space_card_shows_its_title_and_nothing_more(client: httpx.AsyncClient, app: Starlette) -> None:
    space = await create(client, "Board meeting", private=True)
    head = read_head((await client.get(f"/s/{space['id']}")).text)
    assert head.one("og:title") == "Board meeting" and is_absolute(head.one("og:image"))
    assert head.one("twitter:card") == "summary_large_image"
    assert not [key for key in head.meta if key.startswith("twitter:player") or key.startswith("og:audio")]
    assert not [link for link in head.links if link.get("type") == "application/json+oembed"]
    assert head.one("og:description") == "A private conversation: listening needs the link from the host."
    # Live or ended, a private space's card says no more: no stream, no recording.
    for state in (SpaceState.LIVE, SpaceState.ENDED):
        hidden = await stored(app, state, private=True)
        head = read_head((await client.get(f"/s/{hidden.id}")).text)
        assert "og:audio" not in head.meta and "twitter:player" not in head.meta
        assert hidden.id not in head.one("og:description")


async def test_the_card_says_live_or_replay_and_points_at_the_audio(client: httpx.AsyncClient, app: Starlette) -> None:
    live = await stored(app, SpaceState.LIVE)
    head = read_head((await client.get(f"/s/{live.id}")).text)
    assert head.one("og:description").startswith("Live now.")
    assert head.one("og:audio") == f"http://podium.test/hls/{live.id}/index.m3u8"
    assert head.one("og:audio:type") == "application/vnd.apple.mpegurl"
    replay = await stored(app, SpaceState.ENDED)
    head = read_head((await client.get(f"/s/{replay.id}", headers={"Accept-Language": "de-DE,de;q=0.9"})).text)
    assert head.one("og:description") == (
        "Das Gespräch ist beendet; die Aufnahme steht zum Anhören und Herunterladen bereit."
    )
    assert head.one("og:audio") == f"http://podium.test/media/{replay.id}/recording.m4a"
    assert head.one("og:audio:type") == "audio/mp4"
    unrecorded = await stored(app, SpaceState.ENDED, record=False)
    head = read_head((await client.get(f"/s/{unrecorded.id}")).text)
    assert head.one("og:description") == "This conversation has ended." and "og:audio" not in head.meta


async def test_the_card_is_in_the_pages_language(client: httpx.AsyncClient) -> None:
    space = await create(client, "Das Gespräch", starts_at="2027-03-02T19:30:00Z")
    response = await client.get(f"/s/{space['id']}", headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
    assert response.headers["content-language"] == "de"
    head = read_head(response.text)
    assert (
        head.one("og:description")
        == "Live am 02.03.2027 um 19:30 UTC. Hören Sie im Browser zu, ohne App und ohne Konto."
    )
    assert head.one("og:locale") == "de_DE" and head.meta["og:locale:alternate"] == ["en_US"]
    assert head.title == "Das Gespräch \N{EN DASH} Podium"
    # ?lang= wins over the browser, as on every page.
    english = read_head((await client.get(f"/s/{space['id']}?lang=en", headers={"Accept-Language": "de"})).text)
    assert english.one("og:locale") == "en_US" and english.one("og:description").startswith("Live on ")


async def test_the_card_uses_the_public_address_when_one_is_set(tmp_path: Path) -> None:
    settings = Settings.load({}, data_dir=tmp_path / "data", public_url="https://podium.example.org/")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.7:8000") as client:
            space = await create(client, "Behind a proxy")
            head = read_head((await client.get(f"/s/{space['id']}")).text)
    assert head.one("og:url") == f"https://podium.example.org/s/{space['id']}"
    assert head.one("og:image") == "https://podium.example.org/static/card.png"
    assert head.one("twitter:player") == f"https://podium.example.org/embed/{space['id']}"


async def test_an_unknown_space_page_is_a_404_not_an_error(client: httpx.AsyncClient) -> None:
    for path in (f"/s/{new_space_id()}", "/s/not-an-id"):
        response = await client.get(path)
        assert response.status_code == 404, path
    assert (await client.head(f"/s/{new_space_id()}")).status_code == 404
