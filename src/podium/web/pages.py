"""The pages: plain HTML, CSS and JavaScript files; the space pages read everything from the API."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from podium.errors import NotFound
from podium.ids import is_space_id
from podium.settings import Settings

STATIC = Path(__file__).parent / "static"
PAGE_CACHE = "public, max-age=60"
# Pages load only from this origin; hls.js runs its transmuxer in a blob: worker.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": PAGE_CACHE,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The host console asks for the microphone; nothing else does.
    "Permissions-Policy": "microphone=(self), camera=()",
}


def find_hlsjs(configured: Path | None) -> Path | None:
    """hls.js as `npm install` put it: the configured folder, else node_modules near here or cwd."""
    candidates = [configured] if configured else []
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidates.append(folder / "node_modules" / "hls.js" / "dist")
    for folder in candidates:
        if folder is not None and (folder / "hls.min.js").is_file():
            return folder
    return None


def _page(name: str) -> Response:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def home(request: Request) -> Response:
    return _page("index.html")


async def listener_page(request: Request) -> Response:
    if not is_space_id(request.path_params["space_id"]):
        raise NotFound("no such space")
    return _page("listen.html")


async def speaker_page(request: Request) -> Response:
    if not is_space_id(request.path_params["space_id"]):
        raise NotFound("no such space")
    return _page("join.html")


async def host_page(request: Request) -> Response:
    if not is_space_id(request.path_params["space_id"]):
        raise NotFound("no such space")
    return _page("host.html")


def page_routes(settings: Settings) -> list[BaseRoute]:
    hlsjs = find_hlsjs(settings.hlsjs_dir)

    async def hlsjs_file(request: Request) -> Response:
        if hlsjs is None:
            raise NotFound("hls.js is not installed; run `npm install` in Podium's folder")
        return FileResponse(
            hlsjs / "hls.min.js", media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"}
        )

    return [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/s/{space_id}", listener_page, methods=["GET", "HEAD"]),
        Route("/host/{space_id}", host_page, methods=["GET", "HEAD"]),
        Route("/join/{space_id}", speaker_page, methods=["GET", "HEAD"]),
        Route("/static/vendor/hls.min.js", hlsjs_file, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
