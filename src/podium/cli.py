"""The `podium` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from podium.app import create_asgi

    settings = Settings.load(host=args.host, port=args.port, data_dir=args.data_dir)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    app = create_asgi(settings)
    shown_host = "[" + settings.host + "]" if ":" in settings.host else settings.host
    url = settings.public_url or f"http://{shown_host}:{settings.port}/"
    print(f"Podium {__version__} is running: open {url}", flush=True)
    print(f"  data: {settings.data_dir.resolve()}", flush=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        # Keep-alive for players polling playlists; idle connections go after this.
        timeout_keep_alive=15,
        timeout_graceful_shutdown=5,
    )
    # Ctrl-C: uvicorn shuts down cleanly by itself; people need no traceback after it.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    return 0


def _verify(args: argparse.Namespace) -> int:
    from podium.verify_cli import run

    return run(args.clip, args.instance)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description="Live audio conversations for an audience of any size.")
    parser.add_argument("--version", action="version", version=f"podium {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run Podium in one process (SQLite, local files)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or PODIUM_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000, or PODIUM_PORT)")
    serve.add_argument(
        "--data-dir", type=Path, help="where the database, media and secret live (default ./podium-data)"
    )
    serve.set_defaults(run=_serve)
    verify = commands.add_parser(
        "verify", help="check that a clip is an unaltered excerpt of the official recording (exit 0 if so, 1 if not)"
    )
    verify.add_argument("clip", type=Path, help="the clip's .m4a file, as downloaded")
    verify.add_argument("--instance", help="the Podium instance to check against (default: the one the clip names)")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except PodiumError as error:
        print(f"podium: {error.message}", file=sys.stderr)
        return 2
