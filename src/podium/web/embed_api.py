"""Embedding a space in other sites: the consent-first snippet and oEmbed, both pointing at the
embeddable player (`/embed/{id}`). The snippet loads nothing from this instance until the reader
clicks (or said "always" on that site before); every value in it is escaped for where it lands."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from html import escape as _e
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from podium.domain.space import Space, SpaceState
from podium.errors import Forbidden, InvalidInput, NotFound
from podium.ids import is_space_id
from podium.services import of
from podium.web import i18n
from podium.web.http import json_response, public_base, read_query, space_of
from podium.web.schemas import Error
from podium.web.schemas import recording as R
from podium.web.schemas.recording import Layout
from podium.web.urls import url_path

# The player's frame, in CSS pixels: the compact row, and the row with questions and comments.
HEIGHT_PX: dict[Layout, int] = {"compact": 100, "full": 460}
DEFAULT_WIDTH_PX = 600
OEMBED_CACHE_AGE_S = 3600


@dataclass(frozen=True)
class Embed:
    """What a snippet or an oEmbed answer says about one space, already resolved to absolute URLs."""

    space: Space
    base: str  # https://podium.example.org, no trailing slash
    layout: Layout
    lang: str | None  # None: the player follows the reader's browser

    @property
    def instance(self) -> str:
        return urlsplit(self.base).netloc

    @property
    def player_url(self) -> str:
        query = {"layout": self.layout, **({"lang": self.lang} if self.lang else {})}
        return self.base + url_path("page.embed", space_id=self.space.id) + "?" + urlencode(query)

    @property
    def page_url(self) -> str:
        return self.base + url_path("page.listen", space_id=self.space.id)


def script_json(value: Any) -> str:
    """`value` as a JavaScript literal that cannot end its <script> element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def iframe_html(embed: Embed, width: str = "100%", height_px: int | None = None) -> str:
    """The bare player frame, for sites that need no consent step (and for oEmbed)."""
    height = height_px or HEIGHT_PX[embed.layout]
    language = i18n.languages()[embed.lang or i18n.SOURCE]
    title = language.text("embed.consent.iframe_title", title=embed.space.title)
    return (
        f'<iframe src="{_e(embed.player_url)}" title="{_e(title)}" width="{_e(width)}" height="{height}" '
        f'style="border:0;display:block;max-width:100%;border-radius:14px" loading="lazy"></iframe>'
    )


# The snippet's script, the same for every space; its data comes first, as a JSON literal.
_SNIPPET_SCRIPT = """(function () {
var c = %s;
var box = document.currentScript && document.currentScript.parentNode;
if (!box) return;
var key = "podium-embed-consent:" + c.instance;
function load(focus) {
  var f = document.createElement("iframe");
  f.src = c.src; f.title = c.frameTitle; f.width = "100%%"; f.height = String(c.height);
  f.setAttribute("style", "border:0;display:block;width:100%%;height:" + c.height + "px;border-radius:14px");
  box.parentNode.replaceChild(f, box);
  if (focus) f.focus();
}
var always = false;
try { always = window.localStorage.getItem(key) === "1"; } catch (e) {}
if (always) { load(false); return; }
var when = box.querySelector("[data-podium-when]"), d = new Date(c.time);
if (when && !isNaN(d.getTime())) {
  var parts = (d > new Date() ? c.starts : c.started).split("{time}"), tm = document.createElement("time");
  tm.dateTime = c.time;
  tm.textContent = d.toLocaleString(c.lang, { dateStyle: "long", timeStyle: "short" });
  while (when.firstChild) when.removeChild(when.firstChild);
  when.appendChild(document.createTextNode(parts[0]));
  when.appendChild(tm);
  when.appendChild(document.createTextNode(parts.slice(1).join("")));
}
box.querySelector("button").addEventListener("click", function () {
  if (box.querySelector("input[type=checkbox]").checked) {
    try { window.localStorage.setItem(key, "1"); } catch (e) {}
  }
  load(true);
});
})();"""


def consent_snippet(embed: Embed) -> str:
    """A placeholder that becomes the player when the reader agrees to load it from this instance."""
    space = embed.space
    language = i18n.languages()[embed.lang or i18n.SOURCE]
    instance = embed.instance
    moment = (space.started_at or space.starts_at or space.created_at).astimezone(UTC)
    iso = moment.isoformat().replace("+00:00", "Z")
    upcoming = space.state is SpaceState.SCHEDULED and space.started_at is None
    lead_key = "embed.consent.lead_replay" if space.state is SpaceState.ENDED else "embed.consent.lead_live"
    # Without the script (or before it runs) the time shows in UTC; the script writes the reader's own.
    fallback = language.text(
        "embed.starts" if upcoming else "embed.started", time=moment.strftime("%Y-%m-%d %H:%M UTC")
    )
    data = {
        "instance": instance,
        "src": embed.player_url,
        "frameTitle": language.text("embed.consent.iframe_title", title=space.title),
        "height": HEIGHT_PX[embed.layout],
        "time": iso,
        "lang": language.tag,
        "starts": language.text("embed.starts"),
        "started": language.text("embed.started"),
    }
    font = "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
    box = (
        "box-sizing:border-box;max-width:100%;min-height:"
        f"{HEIGHT_PX[embed.layout]}px;margin:0;padding:14px 16px;border:1px solid #2a3052;"
        f"border-radius:14px;background:#181c33;color:#eef0fb;{font};text-align:left"
    )
    button = (
        "font:inherit;font-weight:700;border:0;border-radius:999px;padding:9px 18px;cursor:pointer;"
        "background:#ff5a5f;color:#fff"
    )
    return (
        f'<div class="podium-consent" data-podium-space="{_e(space.id)}" lang="{_e(language.tag)}" style="{box}">'
        f'<p style="margin:0 0 4px;font-weight:700;font-size:17px;overflow-wrap:anywhere">{_e(space.title)}</p>'
        f'<p style="margin:0 0 8px;color:#b4b9da;font-size:13px">'
        f"{_e(language.text('embed.on_instance', instance=instance))} · "
        f'<span data-podium-when><time datetime="{_e(iso)}">{_e(fallback)}</time></span></p>'
        f'<p style="margin:0 0 10px;font-size:14px">{_e(language.text(lead_key, instance=instance))}</p>'
        f'<div style="display:flex;flex-wrap:wrap;align-items:center;gap:10px 16px">'
        f'<button type="button" style="{button}">{_e(language.text("embed.consent.button"))}</button>'
        f'<label style="display:inline-flex;align-items:center;gap:6px;font-size:13px;cursor:pointer">'
        f'<input type="checkbox" style="width:16px;height:16px;margin:0">'
        f"{_e(language.text('embed.consent.remember', instance=instance))}</label></div>"
        f'<p style="margin:8px 0 0;font-size:13px"><a href="{_e(embed.page_url)}" target="_blank" rel="noopener" '
        f'style="color:#ffb36b">{_e(language.text("embed.consent.open", instance=instance))}</a></p>'
        f"<script>{_SNIPPET_SCRIPT % script_json(data)}</script></div>"
    )


# -- HTTP ------------------------------------------------------------------------------------
async def embed_code(request: Request) -> Response:
    space = await space_of(request)
    if space.private:
        # Its audio is for holders of a listener link; an article would hand that link to every reader.
        raise Forbidden("a private space cannot be embedded: share its listener links with those it is for")
    query = read_query(request, R.EmbedCodeQuery)
    asked = None if isinstance(query.lang, UnsetType) else query.lang
    if asked is not None and asked not in i18n.languages():
        raise InvalidInput(f"lang must be one of {', '.join(sorted(i18n.languages()))}")
    lang = asked or i18n.choose(request.headers.get("accept-language")).tag
    embed = Embed(space, public_base(request), query.layout, lang)
    body = R.EmbedCode(html=consent_snippet(embed), iframe=iframe_html(embed))
    return json_response(body, cache="public, max-age=60")


def _oembed_error(status: int, message: str) -> Response:
    return json_response(Error(error=message), status=status)


async def oembed(request: Request) -> Response:
    try:
        asked = read_query(request, R.OembedQuery)
    except InvalidInput as error:
        return _oembed_error(400, error.message)
    if asked.format == "xml":  # oEmbed's answer for a format the provider does not offer
        return _oembed_error(501, "format xml is not offered; ask for format=json")
    max_width = None if isinstance(asked.maxwidth, UnsetType) else asked.maxwidth
    max_height = None if isinstance(asked.maxheight, UnsetType) else asked.maxheight
    try:
        parts = urlsplit(asked.url)
    except ValueError:
        return _oembed_error(400, "url is not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _oembed_error(400, "url must be an absolute http(s) URL")
    base = public_base(request)
    segments = parts.path.split("/")
    if (
        parts.netloc.lower() != urlsplit(base).netloc.lower()
        or len(segments) != 3
        or segments[1] not in ("s", "embed")
        or not is_space_id(segments[2])
    ):
        return _oembed_error(404, "url is not a space of this instance")
    try:
        space = await of(request).directory.get_space(segments[2])
    except NotFound:
        return _oembed_error(404, "no such space")
    if space.private:
        return _oembed_error(401, "a private space cannot be embedded")
    query = parse_qs(parts.query)
    layout: Layout = "full" if query.get("layout") == ["full"] else "compact"
    lang = query.get("lang", [""])[0]
    # The frame fits in what the consumer allows: narrower (down to its width), and the compact
    # row where the full layout does not fit.
    width = min(DEFAULT_WIDTH_PX, max_width) if max_width else DEFAULT_WIDTH_PX
    if max_height is not None and max_height < HEIGHT_PX[layout]:
        layout = "compact"
    height = min(HEIGHT_PX[layout], max_height) if max_height else HEIGHT_PX[layout]
    embed = Embed(space, base, layout, lang if lang in i18n.languages() else None)
    body = R.Oembed(
        type="rich",
        version="1.0",
        title=space.title,
        provider_name="Podium",
        provider_url=base + url_path("page.home"),
        html=iframe_html(embed, str(width), height),
        width=width,
        height=height,
        cache_age=OEMBED_CACHE_AGE_S,
    )
    return json_response(body, cache=f"public, max-age={OEMBED_CACHE_AGE_S // 12}")
