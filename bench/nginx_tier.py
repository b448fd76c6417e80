"""nginx for the benchmarks: the shipped `deploy/nginx/podium.conf` as the cache tier in front of Podium, or any
other site (a static peer), in the foreground with its config, pid, logs and cache in one folder (`prefix`).

Every nginx started here runs until `harness.stop_process(nginx.proc, ...)` (SIGTERM to the master: its
workers go with it); it talks to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import harness
import httpx

NGINX = "/usr/sbin/nginx"
SHIPPED = harness.BENCH_DIR.parent / "deploy" / "nginx" / "podium.conf"
FD_MARGIN = 256  # file descriptors nginx needs besides its connections and cache files
# A line of nginx's error log, reduced to its level and message ("warn: upstream timed out").
_ERROR_KIND = re.compile(r"^\S+ \S+ \[(\w+)\].*?\d+: (?:\*\d+ )?([^,]*).*$")


def nginx_version() -> str:
    """nginx's version, as `nginx -v` prints it ('' if it cannot be run)."""
    try:
        out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().split("/", 1)[-1]


def upstream_keepalive() -> int:
    """The idle connections the shipped config keeps to Podium (its `keepalive N;`)."""
    found = re.search(r"keepalive (\d+);", SHIPPED.read_text())
    if found is None:
        raise RuntimeError(f"{SHIPPED} no longer says `keepalive N;`")
    return int(found.group(1))


def shipped_site(origin_port: int, listen: str, cache_dir: Path, data_dir: Path) -> str:
    """`deploy/nginx/podium.conf` rewritten as tests/test_nginx.py does: the upstream, `listen` (its whole
    argument, e.g. "127.0.0.1:8080 backlog=4096"), the cache path and the folder of the link-key include."""
    rewritten = (
        SHIPPED.read_text()
        .replace("server 127.0.0.1:8000;", f"server {harness.HOST}:{origin_port};")
        .replace("listen 80;", f"listen {listen};")
        .replace("/var/cache/nginx/podium", str(cache_dir))
        .replace("/var/lib/podium/", f"{data_dir}/")
    )
    upstream = f"server {harness.HOST}:{origin_port};"
    if rewritten.count(upstream) != 1 or f"listen {listen};" not in rewritten or "/var/" in rewritten:
        raise RuntimeError(f"{SHIPPED} no longer has the lines the benchmarks rewrite")
    return rewritten


@dataclass(frozen=True)
class AccessLog:
    """An access log in nginx's folder: `file`, in the format `fields` (nginx variables) named `name`, with
    `options` after it (e.g. `if=$upstream_addr` for the requests that reached Podium only)."""

    file: str
    name: str
    fields: str
    options: str = ""

    def lines(self, prefix: Path) -> str:
        # Background updates of stale objects are subrequests: logged too, so every origin request counts.
        return (
            f"    log_format {self.name} '{self.fields}';\n"
            "    log_subrequest on;\n"
            f"    access_log {prefix}/{self.file} {self.name} {self.options};\n"
        )


def nginx_main_conf(prefix: Path, workers: int, connections: int, http_lines: str) -> str:
    """A whole nginx.conf around `http_lines` (the inside of `http { }`), everything kept in `prefix`.

    `connections`: how many connections a worker must hold at once (clients and upstream); nginx gets as many
    open files as that needs, within this process's hard limit (which nginx inherits)."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(f"    {name}_temp_path {prefix}/{name};\n" for name in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    open_files = min(2 * connections + FD_MARGIN, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    return (
        f"{user}worker_processes {workers};\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        f"worker_rlimit_nofile {open_files};\n"
        f"events {{ worker_connections {max(1024, min(connections, open_files - FD_MARGIN))}; }}\n"
        f"http {{\n{temp_paths}{http_lines}}}\n"
    )


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    prefix: Path
    access_log: Path | None = None

    @property
    def base(self) -> str:
        return f"http://{harness.HOST}:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.proc.pid, *harness.children(self.proc.pid)]

    def worker_pids(self) -> list[int]:
        return harness.children(self.proc.pid)

    def error_summary(self, most: int) -> tuple[int, str] | None:
        """How many lines nginx's error log has and its `most` commonest kinds ("warn: … (12)"); None if empty."""
        errors = (self.prefix / "error.log").read_text(errors="replace").splitlines()
        if not errors:
            return None
        kinds = Counter(_ERROR_KIND.sub(r"\1: \2", e) for e in errors)
        return len(errors), "; ".join(f"{k} ({n:,})" for k, n in kinds.most_common(most))


def start_nginx(prefix: Path, port: int, conf: str, timeout_s: float = 15.0, access_log: Path | None = None) -> Nginx:
    """`/usr/sbin/nginx` in the foreground with `conf` as its nginx.conf (checked first), until it answers on `port`.

    Stop it with `harness.stop_process(nginx.proc, "nginx")`."""
    (prefix / "nginx.conf").write_text(conf)
    command = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejects the configuration:\n{check.stderr}")
    with (prefix / "stderr.log").open("wb") as log:
        proc = subprocess.Popen([*command, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}: {(prefix / 'error.log').read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://{harness.HOST}:{port}/", timeout=1)
            return Nginx(proc, port, prefix, access_log)
        time.sleep(0.1)
    harness.stop_process(proc, "nginx")
    raise RuntimeError(f"nginx did not answer within {timeout_s:.0f} s")


def start_cache_tier(
    origin_port: int,
    data_dir: Path,
    prefix: Path,
    connections: int,
    log: AccessLog,
    workers: int = 1,
    backlog: int | None = None,
) -> Nginx:
    """nginx running the shipped site config in front of Podium on `origin_port` (the link-key include read from
    `data_dir`), on a free port, its cache in `prefix`/cache, with `log`. `connections` as in `nginx_main_conf`;
    `backlog`: the listen socket's, instead of nginx's 511."""
    port = harness.free_port()
    listen = f"{harness.HOST}:{port}" + (f" backlog={backlog}" if backlog is not None else "")
    (prefix / "podium.conf").write_text(shipped_site(origin_port, listen, prefix / "cache", data_dir))
    http_lines = log.lines(prefix) + f"    include {prefix}/podium.conf;\n"
    conf = nginx_main_conf(prefix, workers, connections, http_lines)
    return start_nginx(prefix, port, conf, access_log=prefix / log.file)
