"""Embedding: the player page frames anywhere, the consent snippet escapes what it carries, oEmbed."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from podium.web.embed_api import script_json

HOSTILE = "</script><img src=x onerror=alert(1)> \"quoted\" 'single' & <!-- --> </SCRIPT >"


class Parsed(HTMLParser):
    """Every element a browser's parser would make of a snippet, with the text of its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def parse(html: str) -> Parsed:
    parser = Parsed()
    parser.feed(html)
    parser.close()
    return parser


async def create(client: httpx.AsyncClient, title: str = "The 20:00 interview", **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/spaces", json={"title": title, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_player_page_may_be_framed_anywhere_and_never_asks_for_the_microphone(
    client: httpx.AsyncClient,
) -> None:
    space = await create(client)
    response = await client.get(f"/embed/{space['id']}?layout=full", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert response.status_code == 200
    assert "x-frame-options" not in response.headers
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "frame-ancestors 'self'" not in csp
    assert "script-src 'self'" in csp  # framing is opened, nothing else
    assert "microphone=()" in response.headers["permissions-policy"]
    assert response.headers["content-language"] == "de"
    assert response.headers["cache-control"].startswith("public")
    assert 'target="_blank" rel="noopener"' in response.text
    assert "/static/embed.js" in response.text
    # The listener page keeps refusing frames from elsewhere.
    page = await client.get(f"/s/{space['id']}")
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert (await client.get("/embed/not-a-space")).status_code == 404


async def test_the_consent_snippet_escapes_a_hostile_title_for_html_and_for_its_script(
    client: httpx.AsyncClient,
) -> None:
    space = await create(client, HOSTILE, starts_at="2027-03-02T19:30:00Z")
    response = await client.get(f"/api/spaces/{space['id']}/embed-code", params={"layout": "full", "lang": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    snippet = body["html"]
    parsed = parse(snippet)
    tags = [tag for tag, _ in parsed.tags]
    # The title makes no element of its own: one script, no image, and nothing loaded from anywhere.
    assert "img" not in tags
    assert tags.count("script") == 1
    assert not any(attrs.get("src") for _, attrs in parsed.tags)
    assert not any(tag in ("iframe", "link", "style") for tag in tags)
    assert space["title"] == HOSTILE
    assert HOSTILE in "".join(parsed.text)  # the title reads as written
    script = parsed.scripts[0]
    assert "</script" not in script.lower() and "<!--" not in script
    literal = re.match(r"\(function \(\) \{\nvar c = (\{.*?\});\n", script)
    assert literal is not None
    data = json.loads(literal.group(1))
    assert data["frameTitle"] == f"Podium player: {HOSTILE}"
    assert data["src"] == f"http://podium.test/embed/{space['id']}?layout=full&lang=en"
    assert data["height"] == 460 and data["time"] == "2027-03-02T19:30:00Z"
    assert "Listen live — by clicking you agree that content from podium.test is loaded." in snippet
    assert "Always load content from podium.test on this site" in snippet
    # The plain frame escapes it too.
    frame = parse(body["iframe"])
    assert [tag for tag, _ in frame.tags] == ["iframe"]
    assert frame.tags[0][1]["title"] == f"Podium player: {HOSTILE}"


async def test_the_consent_snippet_speaks_german_and_refuses_private_spaces(client: httpx.AsyncClient) -> None:
    space = await create(client)
    german = (await client.get(f"/api/spaces/{space['id']}/embed-code", params={"lang": "de"})).json()["html"]
    assert "Live zuhören — mit dem Klick stimmen Sie zu, dass Inhalte von podium.test geladen werden." in german
    assert "Player laden" in german and 'lang="de"' in german
    assert (await client.get(f"/api/spaces/{space['id']}/embed-code", params={"layout": "wide"})).status_code == 400
    assert (await client.get(f"/api/spaces/{space['id']}/embed-code", params={"lang": "xx"})).status_code == 400
    assert (await client.get("/api/spaces/aaaaaaaaaaaa/embed-code")).status_code == 404
    private = await create(client, private=True)
    refused = await client.get(f"/api/spaces/{private['id']}/embed-code")
    assert refused.status_code == 403
    assert "private" in refused.json()["error"]


def test_script_literals_cannot_end_their_script_or_break_a_line() -> None:
    literal = script_json({"title": "</script><!-- \u2028\u2029 & >"})
    assert not set(literal) & set("<>&\u2028\u2029")
    assert json.loads(literal) == {"title": "</script><!-- \u2028\u2029 & >"}


async def test_oembed_answers_a_space_page_with_a_player_frame(client: httpx.AsyncClient) -> None:
    space = await create(client, 'A "quoted" <title>')
    response = await client.get("/oembed", params={"url": f"http://podium.test/s/{space['id']}", "format": "json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["type"] == "rich" and answer["version"] == "1.0"
    assert answer["title"] == 'A "quoted" <title>'
    assert answer["provider_name"] == "Podium" and answer["provider_url"] == "http://podium.test/"
    assert (answer["width"], answer["height"]) == (600, 100)
    assert isinstance(answer["cache_age"], int)
    frame = parse(answer["html"])
    assert [tag for tag, _ in frame.tags] == ["iframe"]
    attrs = frame.tags[0][1]
    assert attrs["src"] == f"http://podium.test/embed/{space['id']}?layout=compact"
    assert (attrs["width"], attrs["height"]) == ("600", "100")
    assert attrs["title"] == 'Podium player: A "quoted" <title>'


@pytest.mark.parametrize(
    ("query", "size", "layout"),
    [
        ("maxwidth=400", (400, 460), "full"),
        ("maxwidth=800&maxheight=500", (600, 460), "full"),
        ("maxheight=300", (600, 100), "compact"),  # the full player does not fit: the compact row does
        ("maxheight=80", (600, 80), "compact"),
    ],
)
async def test_oembed_fits_the_frame_in_maxwidth_and_maxheight(
    client: httpx.AsyncClient, query: str, size: tuple[int, int], layout: str
) -> None:
    space = await create(client)
    url = f"http://podium.test/embed/{space['id']}?layout=full"
    params = dict(pair.split("=") for pair in query.split("&"))
    answer = (await client.get("/oembed", params={"url": url, **params})).json()
    assert (answer["width"], answer["height"]) == size
    attrs = parse(answer["html"]).tags[0][1]
    assert (attrs["width"], attrs["height"]) == (str(size[0]), str(size[1]))
    assert f"layout={layout}" in str(attrs["src"])


async def test_oembed_refuses_what_it_cannot_answer(client: httpx.AsyncClient) -> None:
    space = await create(client)
    page = f"http://podium.test/s/{space['id']}"
    xml = await client.get("/oembed", params={"url": page, "format": "xml"})
    assert xml.status_code == 501
    for params in ({}, {"url": ""}, {"url": "not a url"}, {"url": "ftp://podium.test/s/x"}):
        missing = await client.get("/oembed", params=params)
        assert missing.status_code == 400, params
        assert "url" in missing.json()["error"]
    assert (await client.get("/oembed", params={"url": page, "maxwidth": "wide"})).status_code == 400
    for elsewhere in (
        f"http://other.example/s/{space['id']}",  # another site
        "http://podium.test/s/aaaaaaaaaaaa",  # no such space
        f"http://podium.test/host/{space['id']}",  # not a page for listeners
        "http://podium.test/",
    ):
        assert (await client.get("/oembed", params={"url": elsewhere})).status_code == 404, elsewhere
    private = await create(client, private=True)
    assert (await client.get("/oembed", params={"url": f"http://podium.test/s/{private['id']}"})).status_code == 401
