"""The `podium` command."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.settings import Settings


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from podium.app import create_asgi
    from podium.web.protocol import protocol_with_limits

    settings = Settings.load(host=args.host, port=args.port, data_dir=args.data_dir)
    json_logs = settings.log_format == "json"
    if json_logs:
        from podium.ops.logs import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    else:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
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
        # JSON: uvicorn's own lines go through the root handler too, not uvicorn's text handlers.
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        # Keep-alive for players polling playlists; idle connections go after this.
        timeout_keep_alive=15,
        timeout_graceful_shutdown=5,
        backlog=settings.listen_backlog,
        http=protocol_with_limits(
            settings.header_timeout_s, settings.body_timeout_s, settings.max_head_bytes, settings.max_header_line_bytes
        ),
        # Podium has no WebSocket endpoint: upgrade requests are refused, not parsed.
        ws="none",
        # Behind the cache tier, a listener's own address is Podium's to find (podium.web.forwarded,
        # in create_asgi): uvicorn's would take the leftmost, client-chosen address with "*".
        proxy_headers=False,
    )
    # Ctrl-C: uvicorn shuts down cleanly by itself; people need no traceback after it.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    return 0


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
    demo = commands.add_parser(
        "demo", help="try Podium: a live space where two synthetic voices talk and bots ask (Ctrl-C stops it)"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    demo.add_argument(
        "--data-dir", type=Path, help="where its data goes (default: a temporary folder, removed at exit)"
    )
    verify = commands.add_parser(
        "verify", help="check that a clip is an unaltered excerpt of the official recording (exit 0 if so, 1 if not)"
    )
    verify.add_argument("clip", type=Path, help="the clip's .m4a file, as downloaded")
    verify.add_argument(
        "--trust",
        "--instance",
        dest="trust",
        metavar="URL",
        help="the Podium instance you trust, e.g. https://podium.example (default: the one the clip names, "
        "only if the clip's context is on it)",
    )
    rehearse = commands.add_parser(
        "rehearse",
        help="a load test of your deployment before the crowd: a flash crowd of listeners, optionally a flood "
        "(exit 0 on GO, 1 on NO-GO)",
    )
    rehearse.add_argument("url", help="the live space's page address, e.g. https://podium.example/s/ID")
    rehearse.add_argument("--space", help="the space id, if the address is the instance's base")
    rehearse.add_argument("--listeners", type=int, default=100, help="simulated listeners (default 100)")
    rehearse.add_argument(
        "--peak-joins-per-s", type=float, default=20.0, help="the join rate the crowd climbs to (default 20)"
    )
    rehearse.add_argument("--flood", type=float, default=0.0, help="forged tokens and random paths per second")
    rehearse.add_argument("--slow", type=int, default=0, help="slow connections that send headers a byte a second")
    rehearse.add_argument("--stay", type=float, default=10.0, help="seconds each listener stays after joining")
    rehearse.add_argument("--report", default="rehearsal.json", help="where the JSON report goes")
    rehearse.add_argument("--quiet", action="store_true", help="no progress bar")
    rehearse.add_argument("--host-token", help="the host's token: leaves the verdict on the host's go/no-go board")
    plan = commands.add_parser(
        "plan",
        help="size a deployment for an audience from measured figures, showing the arithmetic line by line",
    )
    plan.add_argument("--listeners", required=True, help="listeners at once, all spaces together (1300000 or 1.3M)")
    plan.add_argument("--bitrate", help="the listeners' audio bitrate, 16k to 320k (default: what the stage encodes)")
    plan.add_argument("--spaces", type=int, default=1, help="spaces live at once (default 1)")
    plan.add_argument("--speakers", type=int, default=4, help="people on each stage (default 4)")
    plan.add_argument(
        "--posts-per-listener-per-hour", type=float, default=0.5, help="comments and questions (assumed; default 0.5)"
    )
    plan.add_argument("--votes-per-listener-per-hour", type=float, default=1.0, help="assumed; default 1")
    plan.add_argument("--reactions-per-listener-per-hour", type=float, default=6.0, help="assumed; default 6")
    plan.add_argument(
        "--join-window-s", type=float, default=600.0, help="how long the crowd takes to arrive (default 600 s)"
    )
    plan.add_argument("--headroom", type=float, default=1.5, help="provision this many times the need (default 1.5)")
    plan.add_argument("--edge-cores-per-machine", type=int, default=16, help="cores of one cache machine (default 16)")
    plan.add_argument(
        "--origin-requests-per-node",
        dest="origin_requests_per_node_per_s",
        metavar="ORIGIN_REQUESTS_PER_NODE",
        type=float,
        default=1500.0,
        help="requests per second one node answers (joins, heartbeats, posts; assumed, default 1500)",
    )
    plan.add_argument(
        "--stage-cpu-percent",
        type=float,
        help="CPU of one core a space's stage takes (default: measured, from bench/RESULTS.md)",
    )
    plan.add_argument("--figures", help="the measured figures (default bench/figures.json, here or in the repository)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    doctor = commands.add_parser(
        "doctor",
        help="check what breaks deployments (UDP for WebRTC, TURN, public URL, CORS, clock, disk) and say how to "
        "fix each (exit 0 if nothing failed, 1 if something did)",
    )
    doctor.add_argument("--url", help="the running Podium to check, on this machine (default: its own address)")
    doctor.add_argument("--host", help="as for `podium serve` (default 127.0.0.1, or PODIUM_HOST)")
    doctor.add_argument("--port", type=int, help="as for `podium serve` (default 8000, or PODIUM_PORT)")
    doctor.add_argument("--data-dir", type=Path, help="as for `podium serve` (default ./podium-data)")
    doctor.add_argument("--space", help="a space id whose API answer and playlist the CORS checks read")
    doctor.add_argument(
        "--min-free-gib", type=float, default=2.0, help="free disk below which the disk check fails (default 2)"
    )
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Each command but `serve` is the `run` of its module, imported only when it runs.
        run = _serve if args.command == "serve" else importlib.import_module(f"podium.ops.{args.command}").run
        result: int = run(args)
        return result
    except PodiumError as error:
        print(f"podium: {error.message}", file=sys.stderr)
        return 2
