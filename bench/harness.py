"""What the benchmarks share: a Podium server in a subprocess, a live space, the machine, RESULTS.md.

Every wait here is bounded in time; every process started here is stopped by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import platform
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
HOST = "127.0.0.1"
RESULTS_HEAD = "# Benchmark results\n\nWritten by the scripts in `bench/`; how to run them: `bench/README.md`.\n"


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it; a tiny race is acceptable here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(
    proc: subprocess.Popen[Any], name: str, grace_s: float = 10.0, sig: signal.Signals = signal.SIGTERM
) -> None:
    """`sig`, then SIGKILL after `grace_s`; only this pid, never a group or a name."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        print(f"[bench] {name} (pid {proc.pid}) ignored {sig.name} for {grace_s:.0f} s; killing it", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=grace_s)


@dataclass
class Server:
    base: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def podium_server(startup_timeout_s: float = 30.0, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """`podium serve` on a free loopback port with a throw-away data dir; stopped on exit.

    `env` adds `PODIUM_*` settings (or overrides the defaults set here)."""
    with (
        tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp,
        serve(Path(tmp) / "data", Path(tmp) / "podium.log", startup_timeout_s, env) as server,
    ):
        yield server


@contextlib.contextmanager
def serve(
    data_dir: Path,
    log_path: Path,
    startup_timeout_s: float = 30.0,
    env: Mapping[str, str | None] | None = None,
    host: str = HOST,
) -> Iterator[Server]:
    """`podium serve` on a free port of `host` over `data_dir`, which stays after the stop (a benchmark
    may write into it and start the server again); its log is appended to `log_path`.

    `env` adds `PODIUM_*` settings or overrides the defaults set here; a None value unsets the variable."""
    port = free_port(host)
    # A benchmark drives one server from one address and may leave its spaces live (one per run):
    # the limits on strangers' spaces and the budget of stages are lifted unless `env` sets them.
    lifted = {"PODIUM_SPACE_LIMIT_PER_ADDRESS": "100000/hour", "PODIUM_MAX_STAGES": "1000"}
    merged = {**os.environ, "PODIUM_ICE_LOOPBACK": "only", "PODIUM_LOG_LEVEL": "warning", **lifted, **(env or {})}
    server_env = {k: v for k, v in merged.items() if v is not None}
    command = [
        sys.executable, "-m", "podium", "serve",
        "--host", host, "--port", str(port), "--data-dir", str(data_dir),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env)
    server = Server(f"http://{host}:{port}", data_dir, log_path, proc)
    try:
        _wait_until_up(server, startup_timeout_s)
        yield server
    finally:
        # SIGTERM: uvicorn shuts down gracefully (SIGINT makes `podium serve` print a KeyboardInterrupt traceback).
        stop_process(proc, "podium serve")
        # Keep the server's complaints visible: a benchmark over a failing server is no benchmark.
        log_lines = server.log_text().splitlines()
        noisy = [i for i, line in enumerate(log_lines) if re.search(r"WARNING|ERROR|Traceback", line)]
        if noisy:
            print(f"[bench] the podium log has {len(noisy)} warning/error line(s):", file=sys.stderr)
            for line in log_lines[noisy[0] : noisy[0] + 40]:
                print("    " + line, file=sys.stderr)


def _wait_until_up(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"podium serve exited with {server.proc.returncode}:\n{server.log_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base + "/", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"podium serve did not answer within {timeout_s:.0f} s:\n{server.log_text()}")


async def create_space(client: httpx.AsyncClient, base: str, title: str) -> dict[str, Any]:
    response = await client.post(base + "/api/spaces", json={"title": title})
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/spaces answered {response.status_code}: {response.text}")
    space: dict[str, Any] = response.json()
    return space


async def end_space(client: httpx.AsyncClient, base: str, space: dict[str, Any]) -> None:
    response = await client.post(
        f"{base}/api/spaces/{space['id']}/end", headers={"Authorization": f"Bearer {space['host_token']}"}
    )
    if response.status_code != 200:
        print(f"[bench] ending the space answered {response.status_code}: {response.text}", file=sys.stderr)


# -- reporting ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, Linux {platform.release()}"


def command_line() -> str:
    return "python " + shlex.join([os.path.relpath(sys.argv[0], Path.cwd()), *sys.argv[1:]])


def revision() -> str:
    """The commit measured, and whether src/ differed from it (others edit the tree while we run)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' (src/ had uncommitted changes)' if dirty else ''}"


def header_lines() -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Date: {now}",
        f"- Machine: {machine()}",
        f"- Podium: commit {revision()}",
        f"- Command: `{command_line()}` (from the checkout's root)",
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the ")" that ends the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one (a connection per client); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_time(text: str) -> float:
    """An ISO 8601 time as Podium writes it ("…Z"), in Unix seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def write_section(name: str, body: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in RESULTS.md (append if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else RESULTS_HEAD
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print(f"[bench] wrote the {name} section of {RESULTS}")


async def wait_for_segments(client: httpx.AsyncClient, url: str, count: int, timeout_s: float = 30.0) -> None:
    """Until the media playlist lists `count` complete segments."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await client.get(url)
        if response.status_code == 200 and response.text.count("#EXTINF") >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"fewer than {count} complete segment(s) in {url} after {timeout_s:.0f} s")


def save_plot(fig: Any, path: Path, max_bytes: int, tag: str) -> str | None:
    """Write a matplotlib figure to `path` (in place, atomically), unless it comes out larger than
    `max_bytes`; closes the figure. The file's name, or None when it was not kept."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with tempfile.NamedTemporaryFile(suffix=".png", dir=path.parent, delete=False) as tmp:
        fig.savefig(tmp.name)
    plt.close(fig)
    size = Path(tmp.name).stat().st_size
    if size > max_bytes:
        Path(tmp.name).unlink()
        print(f"{tag} the plot was {size} bytes; not kept", file=sys.stderr)
        return None
    Path(tmp.name).replace(path)
    path.chmod(0o644)
    return path.name
