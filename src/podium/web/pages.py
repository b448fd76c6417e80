"""The pages: HTML templates in the reader's language, plain CSS and JavaScript; the space pages read
everything else from the API."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import segno
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from podium.domain.space import Space, SpaceState
from podium.errors import NotFound
from podium.ids import is_space_id
from podium.services import of
from podium.web import i18n
from podium.web.compressed import FILES
from podium.web.http import public_base, space_of
from podium.web.urls import url_path

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
# Pages load only from this origin; hls.js runs its transmuxer in a blob: worker.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The host console asks for the microphone; nothing else does.
    "Permissions-Policy": "microphone=(self), camera=()",
}


HLSJS_BUILD = "hls.light.min.js"


def find_hlsjs(configured: Path | None) -> Path | None:
    """hls.js's light build as `npm install` put it: in the configured folder, else in node_modules
    near here or the working folder. LL-HLS audio is all the pages play (no subtitles, alternative
    audio or DRM), so the light build does."""
    candidates = [configured] if configured else []
    for start in (Path.cwd(), Path(__file__).resolve()):
        candidates += [folder / "node_modules" / "hls.js" / "dist" for folder in (start, *start.parents)]
    return next((folder / HLSJS_BUILD for folder in candidates if (folder / HLSJS_BUILD).is_file()), None)


_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@cache
def _strings_json(tag: str) -> Markup:
    """The strings for the page's scripts, safe inside <script type="application/json">; made once
    per language, not on every page a crowd opens."""
    language = i18n.languages()[tag]
    text = json.dumps({"lang": language.tag, "strings": language.strings}, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def page_language(request: Request) -> i18n.Language:
    """The language a page is rendered in: `?lang=` if we have it, else the browser's first."""
    return i18n.choose(request.headers.get("accept-language"), request.query_params.get("lang"))


def render_page(request: Request, name: str, headers: dict[str, str] | None = None, **context: Any) -> Response:
    """A page from `templates/`, in the language the browser asks for first (or `?lang=`)."""
    language = page_language(request)

    def text(key: str, **fields: object) -> str | Markup:
        value = language.text(key, **fields)
        # Keys ending in _html hold markup from Podium's own locale files; every other string is escaped.
        return Markup(value) if key.endswith("_html") else value

    def plural(key: str, count: int, **fields: object) -> str:
        return language.plural(key, count, **fields)

    html = _templates.get_template(name).render(
        lang=language.tag,
        languages=[(known.tag, known.name) for known in i18n.languages().values()],
        t=text,
        tn=plural,
        i18n_json=_strings_json(language.tag),
        **context,
    )
    # The edge keys its page cache on ?lang= and the first language the browser asks for, which is
    # all the choice depends on (deploy/nginx/podium.conf); Vary tells every other cache the same.
    merged = {**PAGE_HEADERS, "Content-Language": language.tag, "Vary": "Accept-Language", **(headers or {})}
    return HTMLResponse(html, headers=merged)


async def home(request: Request) -> Response:
    return render_page(request, "index.html")


# The card image shared pages show (1200x630, made by scripts/make_card.py) and the size the
# embedded player asks for in a Twitter player card.
CARD_IMAGE = "/static/card.png"
PLAYER_WIDTH_PX, PLAYER_HEIGHT_PX = 480, 160


def _card_description(space: Space, language: i18n.Language) -> str:
    if space.private:
        return language.text("listen.card_private")
    if space.state is SpaceState.LIVE:
        return language.text("listen.card_live")
    if space.state is SpaceState.SCHEDULED:
        if space.starts_at is None:
            return language.text("listen.card_scheduled")
        when = space.starts_at.astimezone(UTC).strftime(language.text("listen.card_date_format"))
        return language.text("listen.card_scheduled_at", when=when)
    recorded = space.record and space.started_at is not None
    return language.text("listen.card_replay" if recorded else "listen.card_ended")


def space_card(request: Request, space: Space, language: i18n.Language) -> dict[str, Any]:
    """What a link preview shows of a space (Open Graph, Twitter card, oEmbed discovery); of a
    private space, no more than its title."""
    base = public_base(request)
    url = base + url_path("page.listen", space_id=space.id)
    card: dict[str, Any] = {
        "title": space.title,
        "description": _card_description(space, language),
        "url": url,
        "image": base + CARD_IMAGE,
        "locale": language.text("language.locale"),
        "alternate_locales": [
            other.text("language.locale") for tag, other in i18n.languages().items() if tag != language.tag
        ],
        **dict.fromkeys(("audio", "audio_type", "player", "oembed")),
    }
    if space.private:
        return card
    if space.state is SpaceState.LIVE:
        hls = base + url_path("hls.index", space_id=space.id)
        card["audio"], card["audio_type"] = hls, "application/vnd.apple.mpegurl"
    elif space.state is SpaceState.ENDED and space.record and space.started_at is not None:
        card["audio"], card["audio_type"] = base + url_path("download", space_id=space.id), "audio/mp4"
    card["player"] = base + url_path("page.embed", space_id=space.id)
    card["player_width"], card["player_height"] = PLAYER_WIDTH_PX, PLAYER_HEIGHT_PX
    card["oembed"] = base + url_path("oembed") + "?" + urlencode({"url": url, "format": "json"})
    return card


async def listener_page(request: Request) -> Response:
    # Rendered with the space's title and card, so that a shared link previews it.
    space = await space_of(request)
    card = space_card(request, space, page_language(request))
    return render_page(request, "listen.html", space_title=space.title, card=card)


def _space_page(name: str, headers: dict[str, str] | None = None) -> Callable[[Request], Awaitable[Response]]:
    """A page of one space that reads the space from the API itself: 404 only for an id that cannot be one."""

    async def page(request: Request) -> Response:
        if not is_space_id(request.path_params["space_id"]):
            raise NotFound("no such space")
        return render_page(request, name, headers)

    return page


speaker_page = _space_page("join.html")
host_page = _space_page("host.html")
# The embeddable player (/embed/{id}) is framed by other sites: any ancestor may frame it, and it
# never asks for the microphone. Everything else is as strict as the pages. The layout is read by
# the page's script from ?layout=, so one cached copy per language serves all.
embed_page = _space_page(
    "embed.html",
    {
        "Content-Security-Policy": CSP.replace("frame-ancestors 'self'", "frame-ancestors *"),
        "Permissions-Policy": "microphone=(), camera=()",
    },
)


async def hlsjs_file(request: Request) -> Response:
    hlsjs = find_hlsjs(of(request).settings.hlsjs_dir)
    if hlsjs is None:
        raise NotFound("hls.js is not installed; run `npm install` in Podium's folder")
    return FILES.respond(hlsjs, request.scope, "text/javascript", {"Cache-Control": "public, max-age=3600"})


async def share_qr(request: Request) -> Response:
    """The space's listener link as a QR code: only that link, never text a caller chooses."""
    space = await space_of(request)
    page = public_base(request) + url_path("page.listen", space_id=space.id)
    svg = io.BytesIO()
    segno.make_qr(page, error="m").save(svg, kind="svg", xmldecl=False, scale=4, border=2, dark="#0f1222")
    return Response(svg.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})
