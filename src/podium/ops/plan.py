"""`podium plan`: size a deployment from measured figures, and show the arithmetic line by line.

Pure and synchronous: `load_figures` reads what a benchmark measured, `make_plan` turns the
inputs, the figures and the settings into a `Plan` (sections of lines: the quantity, the formula
with its numbers in it, the result, and where it comes from), `render` writes it for a terminal.
Every number is an input, a measured figure (named with its source), a setting or a constant of
Podium's code (imported where the code exposes it, else named with the module it comes from), or
an assumption stated as one.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import json
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.pool import QueuePool

from podium.admission.waiting_room import MAX_RETRY_AFTER_S
from podium.audience.feed import QUESTIONS_SHOWN, Feed
from podium.audience.presence import MIN_SAMPLE_RATE
from podium.audience.timeline import KEYFRAME_EVERY, REACTIONS, RECENT_COMMENTS, Timeline
from podium.domain.posts import Post, PostKind, public_view
from podium.errors import InvalidInput
from podium.ids import PostId, SpaceId, UserId
from podium.media import fmp4
from podium.media.packager import Layout, Packager
from podium.media.stage import BITRATE as STAGE_BITRATE
from podium.settings import Settings
from podium.spaces.listeners import COUNTS_SHARE_S, PEAK_FLUSH_INTERVAL_S
from podium.spaces.ownership import OWNER_MEMORY_S, STAGE_LEASE_S

REPOSITORY = Path(__file__).resolve().parents[2]
MIN_BITRATE, MAX_BITRATE = 16_000, 320_000
MAX_LISTENERS = 1_000_000_000

# Assumptions: not measured, stated wherever they are used.
RESPONSE_HEADER_BYTES = 350  # status line and headers of one HTTP/1.1 answer through the shipped nginx
COMMENT_CHARS = 100  # a typical comment's text (at most 280)
QUESTION_CHARS = 150  # a typical question's text (at most 500)
POSTGRES_MAX_CONNECTIONS = 100  # PostgreSQL's default max_connections
# Constants read from Podium's code where they are not importable on their own:
COUNT_SHARE_COMMANDS = 5  # backends/counts.py: MULTI, HSET, EXPIRE, EXEC, then HGETALL
LEASE_RENEWALS_PER_LEASE = 3  # spaces/stages.py renews stage leases every STAGE_LEASE_S / 3
OWNER_LOOKUP_S = OWNER_MEMORY_S  # a node remembers for a second which node runs a stage
OWNER_LOOKUP_COMMANDS = 2  # backends/placement.py: the owner's name, then its address


@dataclass(frozen=True)
class Inputs:
    listeners: int  # all spaces together, spread evenly over them
    bitrate_bps: int
    spaces: int = 1
    speakers: int = 4
    posts_per_listener_per_hour: float = 0.5
    votes_per_listener_per_hour: float = 1.0
    reactions_per_listener_per_hour: float = 6.0
    join_window_s: float = 600.0
    headroom: float = 1.5
    edge_cores_per_machine: int = 16
    origin_requests_per_node_per_s: float = 1500.0


@dataclass(frozen=True)
class Figures:
    """What bench/edge.py measured (bench/figures.json)."""

    path: str
    measured_on: str
    machine: str
    listeners_per_edge_core: float
    edge_bitrate_kbps: float
    requests_per_listener_per_s: float
    edge_source: str
    origin_per_space_100: float
    origin_per_space_10000: float
    origin_ratio: float
    icecast_listeners_per_core: float
    icecast_bitrate_kbps: float


@dataclass(frozen=True)
class StageCpu:
    """CPU of one core that one space's stage takes (`podium serve`, measured), at the speakers asked."""

    percent: float
    source: str


@dataclass(frozen=True)
class Line:
    quantity: str
    formula: str
    value: float
    unit: str
    basis: str  # input | measured | setting | constant | assumption | derived


@dataclass(frozen=True)
class Source:
    basis: str  # input | measured | setting | constant | assumption
    quantity: str
    value: str  # as shown, with its unit
    where: str  # the flag, the file and key, the setting, the module


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[Line]
    notes: list[str] = field(default_factory=list)  # the model: what the formulas assume


@dataclass(frozen=True)
class Result:
    edge_listeners_per_core: float
    edge_cores: int
    edge_machines: int
    egress_bits_per_s: float
    origin_requests_per_s: float
    nodes: int
    join_arrivals_per_s: float  # per space
    join_capacity_per_s: float  # per space: PODIUM_JOIN_RATE_PER_S
    join_rate_needed_per_s: int  # PODIUM_JOIN_RATE_PER_S at least
    redis_commands_per_s: float
    postgres_commits_per_s: float


@dataclass(frozen=True)
class Plan:
    inputs: Inputs
    sources: list[Source]
    sections: list[Section]
    result: Result
    warnings: list[str] = field(default_factory=list)


# -- reading the inputs ---------------------------------------------------------------------


def parse_count(raw: str, what: str = "--listeners") -> int:
    """1300000, 1,300,000, 1300k or 1.3M: a positive whole number."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", raw.strip().replace(",", "").replace("_", ""), re.IGNORECASE)
    if found is None:
        raise InvalidInput(f"{what}: {raw!r} is not a number of people (write 1300000 or 1.3M)")
    number = Decimal(found.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[found.group(2).lower()]
    if number != number.to_integral_value() or not 1 <= number <= MAX_LISTENERS:
        raise InvalidInput(f"{what}: {raw!r} must be a whole number from 1 to {MAX_LISTENERS:,}")
    return int(number)


def parse_bitrate(raw: str) -> int:
    """64k, 96k or 128000, in bits per second, 16k to 320k."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(k|kbps|kbit/s)?\s*", raw, re.IGNORECASE)
    if found is None:
        raise InvalidInput(f"--bitrate: {raw!r} is not a bitrate; write 64k, 96k or 128000 (bits per second)")
    bps = Decimal(found.group(1)) * (1000 if found.group(2) else 1)
    if not MIN_BITRATE <= bps <= MAX_BITRATE:
        raise InvalidInput(f"--bitrate: {raw!r} is outside the sane range for audio, 16k to 320k")
    return int(bps)


def check_inputs(inputs: Inputs) -> None:
    if not 1 <= inputs.spaces <= 100_000:
        raise InvalidInput("--spaces must be 1 to 100,000")
    if not 1 <= inputs.speakers <= 100:
        raise InvalidInput("--speakers must be 1 to 100 (the host counts)")
    rates = (inputs.posts_per_listener_per_hour, inputs.votes_per_listener_per_hour)
    if min(*rates, inputs.reactions_per_listener_per_hour) < 0:
        raise InvalidInput("posts, votes and reactions per listener per hour cannot be negative")
    if inputs.join_window_s <= 0:
        raise InvalidInput("--join-window-s must be positive")
    if not 1.0 <= inputs.headroom <= 10.0:
        raise InvalidInput("--headroom must be from 1 (none) to 10")
    if inputs.edge_cores_per_machine < 1 or inputs.origin_requests_per_node_per_s <= 0:
        raise InvalidInput("--edge-cores-per-machine and --origin-requests-per-node must be positive")


def find_file(name: str, near: Path | None = None) -> list[Path]:
    """Where a bench/ file is looked for: next to `near`, under the current folder, in the repository."""
    places = ([near.parent / name] if near else []) + [Path.cwd() / "bench" / name, REPOSITORY / "bench" / name]
    return list(dict.fromkeys(places))


def load_figures(path: Path) -> Figures:
    """The measured figures, checked: InvalidInput naming the file and what is wrong."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file (the figures come from `python bench/edge.py`)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot be read ({error})") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a JSON object of measured figures")

    def get(*keys: str, kind: type = float) -> Any:
        value: Any = raw
        for depth, key in enumerate(keys):
            if not isinstance(value, dict) or key not in value:
                raise InvalidInput(f"{path}: {'.'.join(keys[: depth + 1])} is missing")
            value = value[key]
        name = ".".join(keys)
        if kind is str:
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"{path}: {name} must be a non-empty string, not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise InvalidInput(f"{path}: {name} must be a positive number, not {value!r}")
        return float(value)

    edge = "listeners_per_edge_core"
    origin = "origin_requests_per_s_per_space"
    return Figures(
        path=str(path),
        measured_on=get("measured_on", kind=str),
        machine=get("machine", kind=str),
        listeners_per_edge_core=get(edge, "value"),
        edge_bitrate_kbps=get(edge, "bitrate_kbps"),
        requests_per_listener_per_s=get(edge, "requests_per_listener_per_s"),
        edge_source=get(edge, "source", kind=str),
        origin_per_space_100=get(origin, "listeners_100"),
        origin_per_space_10000=get(origin, "listeners_10000"),
        origin_ratio=get(origin, "ratio"),
        icecast_listeners_per_core=get("icecast_listeners_per_core", "value"),
        icecast_bitrate_kbps=get("icecast_listeners_per_core", "bitrate_kbps"),
    )


def stage_cpu_from_results(text: str, speakers: int, where: str) -> StageCpu:
    """`podium serve` CPU per speaker count from the stage section of bench/RESULTS.md, interpolated
    linearly between the measured counts (and past the last two beyond them)."""
    section = re.search(r"<!-- stage:start -->(.*?)<!-- stage:end -->", text, re.DOTALL)
    if section is None:
        raise InvalidInput(f"{where}: no stage section; give --stage-cpu-percent")
    body = section.group(1)
    points: list[tuple[int, float]] = []
    column: int | None = None
    for line in body.splitlines():
        if not line.startswith("|"):
            if points:
                break  # the table has ended
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "podium serve CPU (%)" in cells:
            column = cells.index("podium serve CPU (%)")
        elif column is not None and column < len(cells) and cells[0].isdigit():
            try:
                points.append((int(cells[0]), float(cells[column])))
            except ValueError:
                continue
    if len(points) < 2:
        raise InvalidInput(f"{where}: the stage's CPU table was not found; give --stage-cpu-percent")
    points.sort()
    date = re.search(r"- Date: (.+)", body)
    below = [p for p in points if p[0] <= speakers]
    above = [p for p in points if p[0] >= speakers]
    (x0, y0), (x1, y1) = (below[-1], above[0]) if below and above else (points[-2], points[-1])
    percent = y0 if x0 == x1 else y0 + (speakers - x0) * (y1 - y0) / (x1 - x0)
    how = (
        f"measured at {x0} speakers"
        if x0 == x1
        else f"{y0:g} % at {x0} and {y1:g} % at {x1} speakers, "
        + ("interpolated" if x0 <= speakers <= x1 else "extrapolated")
    )
    measured = f", {date.group(1).strip()}" if date else ""
    return StageCpu(max(percent, 0.0), f"{where}, stage section{measured}: {how}")


# -- what a listener fetches, from Podium's own code ------------------------------------------


def part_header_bytes(bitrate_bps: int, layout: Layout) -> tuple[int, int]:
    """(fMP4 header bytes, AAC bytes) of one part at this bitrate, made by Podium's fMP4 writer
    (AAC frames of the nominal size: the encoder aims at the bitrate)."""
    payload = round(bitrate_bps * layout.part_s / 8)
    sizes = [payload // layout.frames_per_part] * layout.frames_per_part
    sizes[0] += payload - sum(sizes)
    part = fmp4.fragment(1, 0, [bytes(n) for n in sizes], layout.frame_samples)
    return len(part) - payload, payload


@functools.cache
def delta_playlist_bytes(layout: Layout) -> float:
    """The playlist a player reloads (`_HLS_skip=YES`, as hls.js and Safari ask), rendered by
    Podium's packager ten minutes into a stream: the mean over the four part positions."""
    packager = Packager(datetime(2026, 1, 1, tzinfo=UTC), layout)
    frames = [bytes(170)] * layout.frames_per_part
    parts_in_ten_minutes = round(600 / layout.part_s)
    sizes = []
    for n in range(parts_in_ten_minutes + layout.parts_per_segment):
        packager.push(frames)
        if n >= parts_in_ten_minutes:
            sizes.append(len(packager.playlist_bytes(skip=True)))
    return sum(sizes) / len(sizes)


def timeline_object_bytes(
    comments: float, question_events: float, speakers: int, listeners: int, max_comments: int, reaction_kinds: int
) -> float:
    """Mean size of a timeline object, built with Podium's own Timeline: `comments` per interval
    (at most `max_comments` shown), the top questions whenever a question or vote came in (Poisson,
    `question_events` per interval), every KEYFRAME_EVERY-th object a keyframe."""
    when = datetime(2026, 1, 1, tzinfo=UTC)

    def post(kind: PostKind, chars: int, n: int) -> dict[str, Any]:
        author = UserId(f"u{n:016x}")
        name = f"listener{n:04d}"  # ids as Podium makes them; names of 12 characters
        return public_view(Post(PostId(f"p{n:016x}"), SpaceId("s" * 12), author, name, kind, "x" * chars, "c", when))

    people = [{"id": f"m{n:016x}", "name": f"Speaker {n}", "speaking": n == 0, "muted": False} for n in range(speakers)]
    questions = [post(PostKind.QUESTION, QUESTION_CHARS, n) for n in range(QUESTIONS_SHOWN)]
    shown = min(float(max_comments), comments)

    def size(n_comments: int, with_questions: bool, keyframe: bool) -> int:
        # The next tick makes object 1, or object KEYFRAME_EVERY (a keyframe, with the latest comments).
        timeline = Timeline(max_comments=max_comments, seed=1, seq=KEYFRAME_EVERY - 1 if keyframe else 0)
        if keyframe:
            timeline.restore_recent([post(PostKind.COMMENT, COMMENT_CHARS, 1000 + n) for n in range(RECENT_COMMENTS)])
        for n in range(n_comments):
            timeline.comment(post(PostKind.COMMENT, COMMENT_CHARS, n))
        for n in range(reaction_kinds):
            timeline.react(REACTIONS[n], 1000)
        item = timeline.tick(when, {"now": listeners, "peak": listeners}, people, questions if with_questions else None)
        return len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())

    base = size(0, False, False)
    per_comment = size(1, False, False) - base
    with_questions = size(0, True, False) - base
    keyframe = size(0, True, True) - base
    p_questions = 1 - math.exp(-question_events)
    return (
        base
        + shown * per_comment
        + p_questions * with_questions * (KEYFRAME_EVERY - 1) / KEYFRAME_EVERY
        + keyframe / KEYFRAME_EVERY
    )


# -- the plan --------------------------------------------------------------------------------


class _Lines(list[Line]):
    def add(self, quantity: str, value: float, unit: str, formula: str, basis: str = "derived") -> None:
        self.append(Line(quantity, formula, value, unit, basis))


def _n(x: float) -> str:
    """A number for people: thousands separated, a sensible number of decimals."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3g}"


def _bits(bps: float) -> str:
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:,.2f} {unit}"
    return f"{bps:.0f} bit/s"


def _timeline_interval_s() -> float:
    return float(inspect.signature(Feed.__init__).parameters["interval_s"].default)


def _sources(inputs: Inputs, figures: Figures, stage: StageCpu, settings: Settings) -> list[Source]:
    i, f, layout = inputs, figures, Layout()
    edge, origin = "listeners_per_edge_core", "origin_requests_per_s_per_space"
    rows = [
        ("input", "listeners, all spaces", _n(i.listeners), "--listeners"),
        ("input", "bitrate", f"{i.bitrate_bps / 1000:g} kbit/s", "--bitrate"),
        ("input", "spaces at once", _n(i.spaces), "--spaces (the listeners spread evenly)"),
        ("input", "speakers per space", _n(i.speakers), "--speakers"),
        ("input", "join window", f"{_n(i.join_window_s)} s", "--join-window-s (how long the crowd takes to come)"),
        ("input", "headroom", f"x{i.headroom:g}", "--headroom (on what is provisioned)"),
        ("assumption", "posts per listener-hour", _n(i.posts_per_listener_per_hour), "--posts-per-listener-per-hour"),
        ("assumption", "votes per listener-hour", _n(i.votes_per_listener_per_hour), "--votes-per-listener-per-hour"),
        (
            "assumption",
            "reactions per listener-hour",
            _n(i.reactions_per_listener_per_hour),
            "--reactions-per-listener-per-hour",
        ),
        ("assumption", "edge cores per machine", _n(i.edge_cores_per_machine), "--edge-cores-per-machine"),
        ("assumption", "origin requests a node answers", f"{_n(i.origin_requests_per_node_per_s)}/s", "see 3"),
        ("measured", "listeners per edge core", _n(f.listeners_per_edge_core), f"{f.path}: {edge}.value"),
        (
            "measured",
            "requests per listener",
            f"{_n(f.requests_per_listener_per_s)}/s",
            f"{edge}.requests_per_listener_per_s",
        ),
        ("measured", "origin requests per space", f"{_n(f.origin_per_space_10000)}/s", f"{origin}.listeners_10000"),
        (
            "measured",
            "icecast2 listeners per core",
            _n(f.icecast_listeners_per_core),
            "icecast_listeners_per_core.value",
        ),
        ("measured", "stage CPU per space", f"{stage.percent:.1f} % of a core", "see 3"),
    ]
    for name in ("heartbeat_interval_s", "presence_sample_target", "comments_per_interval", "join_rate_per_s"):
        value, default = getattr(settings, name), getattr(Settings(), name)
        rows.append(("setting", f"PODIUM_{name.upper()}", _n(value), "default" if value == default else "configured"))
    rows += [
        ("constant", "part; segment", f"{layout.part_s:g} s; {layout.segment_s:g} s", "media/packager.py Layout"),
        ("constant", "timeline interval", f"{_timeline_interval_s():g} s", "audience/feed.py Feed(interval_s)"),
        ("constant", "lowest heartbeat sampling", f"{MIN_SAMPLE_RATE:g}", "audience/presence.py MIN_SAMPLE_RATE"),
        ("constant", "count sharing; stage lease", f"{COUNTS_SHARE_S:g} s; {STAGE_LEASE_S:g} s", "spaces/"),
        ("assumption", "HTTP answer headers", f"{RESPONSE_HEADER_BYTES} B", "HTTP/1.1 through nginx (HTTP/2: less)"),
        ("assumption", "comment; question", f"{COMMENT_CHARS}; {QUESTION_CHARS} characters", "in the timeline"),
    ]
    return [Source(*row) for row in rows]


def _hls_bytes_per_s(bitrate: int, layout: Layout) -> tuple[float, float, float]:
    """What one listener fetches per second over HLS: (parts, playlists, answer headers)."""
    header, payload = part_header_bytes(bitrate, layout)
    answers = 2 / layout.part_s * RESPONSE_HEADER_BYTES  # a reload and a part per part
    return (payload + header) / layout.part_s, delta_playlist_bytes(layout) / layout.part_s, answers


def _least_nodes(busiest: Callable[[int], float], headroom: float) -> int:
    """The fewest nodes whose busiest one stays within one core ÷ headroom. Its load only falls as
    nodes are added, down to a floor (a stage and the heartbeats a node samples): search by halves."""
    most = 2**23

    def fits(n: int) -> bool:
        return busiest(n) * headroom <= 1

    if not fits(most):
        raise InvalidInput(
            "no number of nodes is enough: a stage and the heartbeats each node samples already fill a "
            "node; lower PODIUM_PRESENCE_SAMPLE_TARGET or --headroom, or raise --origin-requests-per-node"
        )
    return bisect.bisect_left(range(1, most + 1), True, key=fits) + 1


def make_plan(inputs: Inputs, figures: Figures, stage: StageCpu, settings: Settings) -> Plan:
    """The plan: every quantity with its formula, from the inputs, figures, settings and code."""
    check_inputs(inputs)
    L, S, h, B = inputs.listeners, inputs.spaces, inputs.headroom, inputs.bitrate_bps
    per_space, window = L / S, inputs.join_window_s
    layout = Layout()
    part_s, interval_s = layout.part_s, _timeline_interval_s()
    warnings: list[str] = []

    # -- what one listener fetches, and the edge
    header, payload = part_header_bytes(B, layout)
    overhead = (payload + header) / payload
    parts_b, playlists_b, answers_b = _hls_bytes_per_s(B, layout)
    hls_b = parts_b + playlists_b + answers_b
    B0 = round(figures.edge_bitrate_kbps * 1000)
    hls_b0 = sum(_hls_bytes_per_s(B0, layout))
    posts = L * inputs.posts_per_listener_per_hour / 3600
    votes = L * inputs.votes_per_listener_per_hour / 3600
    reactions = L * inputs.reactions_per_listener_per_hour / 3600
    kinds = min(len(REACTIONS), round(reactions / S * interval_s))
    # Every post is counted as a comment, and with the votes as a change of the questions: an upper bound.
    comments, changes = posts / S * interval_s, (posts + votes) / S * interval_s
    shown = settings.comments_per_interval
    object_b = timeline_object_bytes(comments, changes, inputs.speakers, round(per_space), shown, kinds)
    timeline_b = (object_b + RESPONSE_HEADER_BYTES) / interval_s
    r, L0 = figures.requests_per_listener_per_s, figures.listeners_per_edge_core
    # A core's capacity, from the figure: requests, and bytes at the measured bitrate (where the model
    # takes both bounds to meet). The listener page adds the timeline to what the figure's listener did.
    core_requests, core_bytes = L0 * r, L0 * hls_b0
    stream_alone = min(L0, core_bytes / hls_b)
    by_requests = core_requests / (r + 1 / interval_s)
    by_bytes = core_bytes / (hls_b + timeline_b)
    per_core = min(by_requests, by_bytes)
    edge_cores = math.ceil(L * h / per_core)
    machines = math.ceil(edge_cores / inputs.edge_cores_per_machine)
    egress = L * (hls_b + timeline_b) * 8
    kbps, kbps0 = f"{B / 1000:g} kbit/s", f"{figures.edge_bitrate_kbps:g} kbit/s"
    playlist = delta_playlist_bytes(layout)
    e = _Lines()
    e.add("audio parts", parts_b, "B/s", f"({_n(payload)} B of AAC + {header} B of fMP4 headers) ÷ {part_s:g} s")
    e.add("playlists", playlists_b, "B/s", f"{_n(playlist)} B (a delta playlist) ÷ {part_s:g} s")
    e.add("HTTP answer headers", answers_b, "B/s", f"2 answers x {RESPONSE_HEADER_BYTES} B ÷ {part_s:g} s")
    e.add("the stream, all", hls_b, "B/s", f"{_n(parts_b)} + {_n(playlists_b)} + {_n(answers_b)}")
    e.add("timeline", timeline_b, "B/s", f"({_n(object_b)} + {RESPONSE_HEADER_BYTES}) B ÷ {interval_s:g} s")
    e.add("requests: the stream", r, "/s", f"measured (LL-HLS: 2 ÷ {part_s:g} s = {_n(2 / part_s)})", "measured")
    e.add("requests: the timeline", 1 / interval_s, "/s", f"1 ÷ {interval_s:g} s")
    e.add("a core: requests", core_requests, "/s", f"{_n(L0)} listeners x {_n(r)}/s, measured at {kbps0}")
    e.add("a core: bytes", core_bytes, "B/s", f"{_n(L0)} x {_n(hls_b0)} B/s (the stream at {kbps0})")
    e.add("listeners per core, the stream alone", stream_alone, "", f"min({_n(L0)}, {_n(core_bytes)} ÷ {_n(hls_b)})")
    e.add(
        "listeners per core, bound by requests",
        by_requests,
        "",
        f"{_n(core_requests)} ÷ ({_n(r)} + {1 / interval_s:g})",
    )
    e.add("listeners per core, bound by bytes", by_bytes, "", f"{_n(core_bytes)} ÷ ({_n(hls_b)} + {_n(timeline_b)})")
    e.add("listeners per core", per_core, "", f"min({_n(by_requests)}, {_n(by_bytes)})")
    e.add("edge cores", edge_cores, "cores", f"⌈{_n(L)} x {h:g} ÷ {_n(per_core)}⌉")
    e.add("edge machines, a cache each", machines, "", f"⌈{edge_cores} ÷ {inputs.edge_cores_per_machine}⌉")
    e.add("egress, the audio alone", L * B * overhead, "bit/s", f"{_n(L)} x {_n(B)} bit/s x {overhead:.4f}")
    e.add("egress, all", egress, "bit/s", f"{_n(L)} x ({_n(hls_b)} + {_n(timeline_b)}) B/s x 8")
    e.add("egress to provision", egress * h, "bit/s", f"{_bits(egress)} x {h:g}")
    icecast = figures.icecast_listeners_per_core * figures.icecast_bitrate_kbps * 1000 / B
    e.add("icecast2 instead, for comparison", math.ceil(L * h / icecast), "cores", f"⌈{_n(L)} x {h:g} ÷ {_n(icecast)}⌉")
    edge_notes = [
        f"Measured: {figures.path}: {figures.edge_source}; {figures.measured_on}; {figures.machine}.",
        f"Per listener and second. The stream: per {part_s:g} s part, a blocking reload of the delta playlist "
        "(as hls.js and Safari ask; rendered by Podium's packager 10 min into a stream) and the part (as Podium's "
        f"fMP4 writer makes it: x{overhead:.4f} over the AAC at {kbps}). The timeline: an object a second, built "
        f"with Podium's Timeline (min({shown}, {_n(comments)}) comments; the top {QUESTIONS_SHOWN} questions "
        "whenever one changed). Uncompressed, as the shipped nginx sends them.",
        "An edge core is bound by requests and by bytes per second. The figure gives both for its listener, who "
        f"fetched the stream at {kbps0}: the model takes the two bounds to meet there, so the stream alone at "
        f"{kbps0} gets the figure as measured; the listener page also reads the timeline, and the lesser bound holds.",
        f"icecast2: {_n(figures.icecast_listeners_per_core)} listeners per core measured at "
        f"{figures.icecast_bitrate_kbps:g} kbit/s, scaled by bytes to {kbps} (one byte stream per listener).",
    ]
    if abs(r - 2 / part_s) > 0.15 * 2 / part_s:
        warnings.append(
            f"the measured listener made {_n(r)} requests/s; an LL-HLS listener makes {_n(2 / part_s)}: "
            "check what the benchmark measured"
        )

    # -- the origin: what reaches Podium's nodes (writes, and the caches' misses)
    stream = machines * S * figures.origin_per_space_10000
    timeline_misses = machines * S / interval_s
    joins = L / window
    target, beat_s = settings.presence_sample_target, settings.heartbeat_interval_s

    def beats_per_node(n: int) -> float:
        here = per_space / n  # each node counts its own listeners' beats and keeps its own sample
        return S * min(here, max(target, here * MIN_SAMPLE_RATE)) / beat_s

    shared = stream + timeline_misses + joins + posts + votes + reactions
    stage_core, capacity = stage.percent / 100, inputs.origin_requests_per_node_per_s

    def busiest(n: int) -> float:
        return math.ceil(S / n) * stage_core + (shared / n + beats_per_node(n)) / capacity

    nodes = _least_nodes(busiest, h)
    beats, here = nodes * beats_per_node(nodes), per_space / nodes
    total = shared + beats
    f10k = figures.origin_per_space_10000
    o = _Lines()
    o.add("stream: the caches' misses", stream, "/s", f"{machines} caches x {S} spaces x {_n(f10k)}/s")
    o.add("timeline: the caches' misses", timeline_misses, "/s", f"{machines} x {S} x 1 ÷ {interval_s:g} s")
    o.add("joins", joins, "/s", f"{_n(L)} ÷ {_n(window)} s")
    o.add(
        "heartbeats",
        beats,
        "/s",
        f"{nodes} x {S} x min({_n(here)}, max({target}, {_n(here)} x {MIN_SAMPLE_RATE:g})) ÷ {beat_s:g} s",
    )
    o.add("posts", posts, "/s", f"{_n(L)} x {inputs.posts_per_listener_per_hour:g} ÷ 3,600 s")
    o.add("votes", votes, "/s", f"{_n(L)} x {inputs.votes_per_listener_per_hour:g} ÷ 3,600 s")
    o.add("reactions", reactions, "/s", f"{_n(L)} x {inputs.reactions_per_listener_per_hour:g} ÷ 3,600 s")
    o.add("origin requests, all", total, "/s", "the sum of the above")
    origin_notes = [
        "Listeners' reads are cached: each cache misses once per object, whatever the audience (measured: "
        f"{_n(figures.origin_per_space_100)}/s per space at 100 listeners, {_n(f10k)}/s at 10,000, ratio "
        f"{figures.origin_ratio:g}). Joins, heartbeats, posts, votes and reactions all reach a node.",
        "Joins count once each: so it is when the waiting room keeps up (see 4).",
        "Heartbeats: each node samples the listeners whose beats it receives, and keeps about "
        f"PODIUM_PRESENCE_SAMPLE_TARGET ({target}) of them per space beating: the nodes' beats add up.",
    ]

    n = _Lines()
    n.add("a stage", stage_core, "cores", f"{stage.percent:.1f} % of a core", "measured")
    n.add("requests", total / capacity, "cores", f"{_n(total)}/s ÷ {_n(capacity)}/s per node")
    n.add(
        "the busiest node",
        busiest(nodes),
        "cores",
        f"{math.ceil(S / nodes)} x {stage_core:.3f} + ({_n(shared)} "
        f"÷ {nodes} + {_n(beats_per_node(nodes))}) ÷ {_n(capacity)}",
    )
    n.add("at most", 1 / h, "cores", f"1 ÷ {h:g}")
    n.add("Podium nodes", nodes, "nodes", "the fewest for which the busiest node stays within it")
    nodes_notes = [
        "A node is one `podium serve` process: one event loop, about one core. It runs the stages placed on it "
        "and answers its share of the origin's requests, at --origin-requests-per-node (assumed; in "
        "bench/RESULTS.md's flash crowd without the flood one node answered 1,128 requests/s, joins mostly, at "
        "70 % of a core, its stage included).",
        f"The stage: {stage.source}.",
    ]
    if nodes == 1:
        nodes_notes.append(f"A second node lets a stage move on {STAGE_LEASE_S:g} s after its node dies.")

    # -- joining
    arrivals, rate = per_space / window, settings.join_rate_per_s
    needed = math.ceil(arrivals)
    j = _Lines()
    j.add("joins to let in, per space", arrivals, "/s", f"{_n(per_space)} ÷ {_n(window)} s")
    j.add("the waiting room lets in, per space", rate, "/s", "PODIUM_JOIN_RATE_PER_S", "setting")
    if arrivals > rate:
        last_in, longest = per_space / rate, (arrivals - rate) * window
        returns = longest / MAX_RETRY_AFTER_S
        j.add("the last listener is let in after", last_in / 60, "min", f"{_n(per_space)} ÷ {_n(rate)}/s ÷ 60")
        j.add("the longest line", longest, "people", f"({_n(arrivals)} - {_n(rate)})/s x {_n(window)} s")
        j.add(
            "their returns, at least", returns, "/s", f"{_n(longest)} ÷ {MAX_RETRY_AFTER_S} s, each a join and a script"
        )
        warnings.append(
            f"the waiting room lets in {_n(rate)}/s per space and {_n(arrivals)}/s come: set "
            f"PODIUM_JOIN_RATE_PER_S={needed} on every node (else the line lasts {_n(last_in / 60)} min)"
        )
    surge = settings.under_attack_surge * max(rate, needed)
    j.add("PODIUM_JOIN_RATE_PER_S needed, at least", needed, "/s", f"⌈{_n(arrivals)}⌉")
    j.add("fresh joins at a node", arrivals / nodes, "/s", f"{_n(arrivals)} ÷ {nodes} nodes")
    j.add(
        "the puzzle's threshold, per node",
        surge,
        "/s",
        f"{settings.under_attack_surge:g} (PODIUM_UNDER_ATTACK_SURGE) x {_n(max(rate, needed))}/s",
    )
    joining_notes = [
        "Between nodes one waiting room per space is kept in Redis for the whole instance (one node: in memory): "
        "it lets in PODIUM_JOIN_RATE_PER_S a second, whichever node a joiner reaches. Nodes are sized above for "
        f"the joins as they come; a joiner in line comes back after Retry-After (1 to {MAX_RETRY_AFTER_S} s).",
        "Each node watches its own fresh joins for a surge: the crowd alone "
        f"{'does not turn' if arrivals / nodes < surge else 'turns'} the puzzle on (in auto mode).",
    ]

    # -- Redis
    checks, publishes = joins + 2 * posts + votes + reactions, posts + votes + reactions
    counts = nodes * S * COUNT_SHARE_COMMANDS / COUNTS_SHARE_S
    leases = S * LEASE_RENEWALS_PER_LEASE / STAGE_LEASE_S
    lookups = (nodes - 1) * S * OWNER_LOOKUP_COMMANDS / OWNER_LOOKUP_S
    redis_total = checks + joins + publishes + counts + leases + lookups
    rd = _Lines()
    rd.add("rate-limit checks", checks, "/s", f"{_n(joins)} + 2 x {_n(posts)} + {_n(votes)} + {_n(reactions)}")
    rd.add("the waiting room", joins, "/s", f"{_n(joins)} arrivals (none wait: the rate set as needed, see 4)")
    rd.add("bus: PUBLISH", publishes, "/s", f"{_n(posts)} + {_n(votes)} + {_n(reactions)}")
    rd.add("bus: messages delivered", publishes * nodes, "/s", f"{_n(publishes)} x {nodes} nodes")
    rd.add("listener counts", counts, "/s", f"{nodes} x {S} x {COUNT_SHARE_COMMANDS} ÷ {COUNTS_SHARE_S:g} s")
    rd.add("stage leases", leases, "/s", f"{S} x {LEASE_RENEWALS_PER_LEASE} ÷ {STAGE_LEASE_S:g} s")
    rd.add(
        "stage owner lookups", lookups, "/s", f"({nodes} - 1) x {S} x {OWNER_LOOKUP_COMMANDS} ÷ {OWNER_LOOKUP_S:g} s"
    )
    rd.add("heartbeats", 0, "/s", "none: each node counts its listeners in memory", "constant")
    rd.add("Redis commands, all", redis_total, "/s", "the sum of the above, messages delivered apart")
    redis_notes = [
        "A rate-limit check is one EVALSHA (the limits library's moving window): per fresh join, per post twice "
        "(the user, the address), per vote, per reaction. The waiting room: one script per arrival and per "
        "return. Each post, vote and reaction is published once on the bus and delivered to every node. Counts: "
        "MULTI, HSET, EXPIRE, EXEC, HGETALL per node and space. Owner lookups: the owner's name and its address, "
        "remembered for a second.",
    ]

    # -- PostgreSQL
    peaks = nodes * S / PEAK_FLUSH_INTERVAL_S
    commits = posts + votes + peaks
    pool = inspect.signature(QueuePool.__init__).parameters
    size, overflow = int(pool["pool_size"].default), int(pool["max_overflow"].default)
    pg = _Lines()
    pg.add("posts", posts, "commits/s", "an INSERT each, committed before the answer")
    pg.add("votes", votes, "commits/s", "an INSERT and an UPDATE each, one transaction")
    pg.add("listener peaks, at most", peaks, "commits/s", f"{nodes} x {S} ÷ {PEAK_FLUSH_INTERVAL_S:g} s")
    pg.add("joins, heartbeats, reactions", 0, "commits/s", "none: they never reach the database", "constant")
    pg.add("PostgreSQL, all", commits, "commits/s", "the sum of the above")
    pg.add("connections, at most", nodes * (size + overflow), "", f"{nodes} x ({size} + {overflow} overflow)")
    postgres_notes = [f"SQLAlchemy's pool per node; PostgreSQL allows {POSTGRES_MAX_CONNECTIONS} by default."]
    if nodes * (size + overflow) > POSTGRES_MAX_CONNECTIONS:
        warnings.append(f"PostgreSQL's max_connections must be at least {nodes * (size + overflow) + 5}")

    m = _Lines()
    m.add("a recording", (payload + header) / part_s * 3.6 / 1e3, "MB an hour", f"{_n(parts_b)} B/s x 3,600 s")
    m.add("all spaces", S * (payload + header) / part_s * 3.6 / 1e3, "MB an hour", f"{S} x the above")
    if B != STAGE_BITRATE:
        warnings.append(
            f"Podium's stage encodes at {STAGE_BITRATE // 1000} kbit/s (media/stage.py): {kbps} is a what-if"
        )
    if inputs.speakers > settings.max_speakers:
        warnings.append(f"{inputs.speakers} speakers is more than PODIUM_MAX_SPEAKERS ({settings.max_speakers})")
    if figures.origin_ratio > 1.2:
        warnings.append(f"the measured origin load grew {figures.origin_ratio:g} x from 100 to 10,000 listeners")
    sections = [
        Section("Edge: the cache tier (nginx, or a CDN)", e, edge_notes),
        Section("Origin: requests that reach Podium's nodes", o, origin_notes),
        Section("Podium nodes", n, nodes_notes),
        Section("Joining: the waiting room", j, joining_notes),
        Section("Redis", rd, redis_notes),
        Section("PostgreSQL", pg, postgres_notes),
        Section("Media storage", m, ["The segments are the recording; parts are kept until their segment is."]),
    ]
    result = Result(per_core, edge_cores, machines, egress, total, nodes, arrivals, rate, needed, redis_total, commits)
    return Plan(inputs, _sources(inputs, figures, stage, settings), sections, result, warnings)


# -- output ----------------------------------------------------------------------------------


def render(plan: Plan) -> str:
    """The plan for a terminal: each section's model, then each quantity, its result and its formula."""
    i, r = plan.inputs, plan.result
    out = [
        f"Podium plan: {_n(i.listeners)} listeners at {i.bitrate_bps / 1000:g} kbit/s, {i.spaces} space(s), "
        f"{i.speakers} speakers, headroom x{i.headroom:g}",
        "",
        "Where the numbers come from",
    ]
    out += [f"  {s.basis:<10}  {s.quantity:<31} {s.value:<20} {s.where}" for s in plan.sources]
    for number, section in enumerate(plan.sections, 1):
        out += ["", f"{number}. {section.title}"]
        for note in section.notes:
            out += textwrap.wrap(note, 108, initial_indent="  ", subsequent_indent="  ")
        for line in section.lines:
            value = f"{_n(line.value)} {line.unit}".strip()
            if line.unit == "bit/s":
                value = _bits(line.value)
            elif line.unit == "B/s" and line.value >= 1e6:
                value = f"{line.value / 1e6:,.1f} MB/s"
            out.append(f"  {line.quantity:<40} {value:>24}   [{line.basis}]")
            out.append(f"      = {line.formula}")
    rate = r.join_capacity_per_s
    joins = (
        f"set PODIUM_JOIN_RATE_PER_S={r.join_rate_needed_per_s} on each"
        if rate < r.join_rate_needed_per_s
        else f"PODIUM_JOIN_RATE_PER_S {_n(rate)} is enough ({r.join_rate_needed_per_s} needed)"
    )
    out += [
        "",
        "Summary",
        f"  edge: {r.edge_cores} cores ({_n(r.edge_listeners_per_core)} listeners each) on {r.edge_machines} "
        f"machine(s); {_bits(r.egress_bits_per_s)} out, {_bits(r.egress_bits_per_s * i.headroom)} with headroom",
        f"  Podium: {r.nodes} node(s) for {_n(r.origin_requests_per_s)} origin requests/s; {joins}",
        f"  Redis: {_n(r.redis_commands_per_s)} commands/s; PostgreSQL: {_n(r.postgres_commits_per_s)} commits/s",
        "  Not counted: sign-ins (an argon2 hash each), clips, replays and downloads, the hosts' consoles.",
    ]
    if plan.warnings:
        out += ["", "Check"] + [f"  ! {w}" for w in plan.warnings]
    return "\n".join(out) + "\n"


def run(args: Any) -> int:
    """`podium plan`: read the flags, the figures and the settings; print the plan."""
    bitrate = STAGE_BITRATE if args.bitrate is None else parse_bitrate(args.bitrate)
    inputs = Inputs(parse_count(args.listeners), bitrate, **{f.name: getattr(args, f.name) for f in fields(Inputs)[2:]})
    check_inputs(inputs)
    candidates = [Path(args.figures)] if args.figures else find_file("figures.json")
    found = [p for p in candidates if p.is_file()]
    if args.figures or found:
        figures = load_figures(found[0] if found else candidates[0])
    else:
        tried = " or ".join(str(p) for p in candidates)
        raise InvalidInput(f"no measured figures at {tried}: run `python bench/edge.py`, or give --figures FILE")
    if args.stage_cpu_percent is not None:
        if not 0 < args.stage_cpu_percent <= 100:
            raise InvalidInput("--stage-cpu-percent must be above 0 and at most 100 (% of one core)")
        stage = StageCpu(args.stage_cpu_percent, "--stage-cpu-percent")
    else:
        results = [p for p in find_file("RESULTS.md", Path(figures.path)) if p.is_file()]
        if not results:
            raise InvalidInput("no bench/RESULTS.md, where the stage's CPU is measured: give --stage-cpu-percent")
        stage = stage_cpu_from_results(results[0].read_text(encoding="utf-8"), inputs.speakers, str(results[0]))
    plan = make_plan(inputs, figures, stage, Settings.load())
    print(json.dumps(asdict(plan), indent=2, ensure_ascii=False) if args.json else render(plan), end="")
    if args.json:
        print()
    return 0
