"""Compressed answers: the pages' files are gzip-compressed once, ahead, and served with ETags;
JSON and pages on the fly; nothing for a client that does not ask."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
from starlette.applications import Starlette

from podium.web.pages import STATIC

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


async def raw(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The answer and its body exactly as sent (httpx would otherwise undo the compression)."""
    async with client.stream("GET", path, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_scripts_go_out_compressed_once_with_their_etag(client: httpx.AsyncClient, app: Starlette) -> None:
    script = (STATIC / "listen.js").read_bytes()
    response, body = await raw(client, "/static/listen.js", GZIP)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"].startswith("text/javascript")
    assert gzip.decompress(body) == script and len(body) < len(script) / 2

    # Asked again (by this or any client), the same copy: no compression per request.
    cache: Path = app.state.settings.data_dir / "cache" / "gzip"
    copies = sorted(cache.iterdir())
    again, _ = await raw(client, "/static/listen.js", GZIP)
    assert sorted(cache.iterdir()) == copies and again.headers["etag"] == response.headers["etag"]
    cached = await client.get("/static/listen.js", headers={**GZIP, "If-None-Match": response.headers["etag"]})
    assert cached.status_code == 304

    plain, body = await raw(client, "/static/listen.js", IDENTITY)
    assert "content-encoding" not in plain.headers and body == script
    assert plain.headers["etag"] != response.headers["etag"]  # two representations, two tags


async def test_hlsjs_is_the_light_build_compressed(client: httpx.AsyncClient) -> None:
    response, body = await raw(client, "/static/vendor/hls.js", GZIP)
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=3600"
    script = gzip.decompress(body)
    assert b"Hls" in script and len(body) < 160_000, f"hls.js is {len(body)} bytes compressed"


async def test_json_and_pages_are_compressed_on_the_fly(client: httpx.AsyncClient) -> None:
    document, body = await raw(client, "/openapi.json", GZIP)
    assert document.headers["content-encoding"] == "gzip" and gzip.decompress(body).startswith(b"{")
    page, body = await raw(client, "/", GZIP)
    assert page.headers["content-encoding"] == "gzip" and b"<!doctype html>" in gzip.decompress(body)
    small, _ = await raw(client, "/api/spaces/nosuchspace0", GZIP)  # under a kilobyte: not worth it
    assert small.status_code == 404 and "content-encoding" not in small.headers
