"""`podium plan`: the arithmetic against hand-computed values, the bitrate model, the command line."""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InvalidInput
from podium.media.aac import AacEncoder
from podium.media.packager import Layout, Packager, Part
from podium.media.stage import BITRATE as STAGE_BITRATE
from podium.ops.cli import main
from podium.ops.plan import (
    Figures,
    Inputs,
    Plan,
    StageCpu,
    load_figures,
    make_plan,
    parse_bitrate,
    parse_count,
    part_header_bytes,
    stage_cpu_from_results,
)
from podium.settings import Settings

# Round figures, so that the hand-computed values below are easy to follow.
FIGURES: dict[str, Any] = {
    "measured_on": "2026-11-25 10:00 UTC",
    "machine": "test machine",
    "listeners_per_edge_core": {
        "value": 10_000,
        "bitrate_kbps": 64,
        "requests_per_listener_per_s": 3.90625,  # 2 ÷ 0.512 s: a blocking reload and a part per part
        "source": "written by the test",
    },
    "origin_requests_per_s_per_space": {"listeners_100": 5.0, "listeners_10000": 5.0, "ratio": 1.0},
    "icecast_listeners_per_core": {"value": 5_000, "bitrate_kbps": 64},
}
STAGE = StageCpu(10.0, "the test")
# 1,000,000 listeners: posts 100/s, votes 200/s, reactions 1,000/s, joins 2,000/s.
ROUND = Inputs(
    listeners=1_000_000,
    bitrate_bps=64_000,
    posts_per_listener_per_hour=0.36,
    votes_per_listener_per_hour=0.72,
    reactions_per_listener_per_hour=3.6,
    join_window_s=500,
    headroom=1.5,
    edge_cores_per_machine=16,
    origin_requests_per_node_per_s=1000,
)


@pytest.fixture(autouse=True)
def no_podium_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan reads the settings from the environment: the tests use the defaults."""
    for name in [n for n in os.environ if n.startswith("PODIUM_")]:
        monkeypatch.delenv(name)


def write_figures(folder: Path, figures: dict[str, Any] | None = None) -> Path:
    path = folder / "figures.json"
    path.write_text(json.dumps(FIGURES if figures is None else figures))
    return path


@pytest.fixture
def figures(tmp_path: Path) -> Figures:
    return load_figures(write_figures(tmp_path))


def value(plan: Plan, section: str, quantity: str) -> float:
    for s in plan.sections:
        if s.title.startswith(section):
            for line in s.lines:
                if line.quantity == quantity:
                    return line.value
    raise AssertionError(f"no line {quantity!r} in {section!r}")


def test_the_arithmetic_matches_hand_computed_values(figures: Figures) -> None:
    plan = make_plan(ROUND, figures, STAGE, Settings())
    r = plan.result
    # Edge: a core serves 10,000 x 3.90625 = 39,062.5 requests/s, and 10,000 x the stream's bytes at 64k.
    # The stream alone gets the measured figure; the listener page adds a timeline request a second and its
    # bytes, and the lesser bound holds.
    stream, timeline = value(plan, "Edge", "the stream, all"), value(plan, "Edge", "timeline")
    assert value(plan, "Edge", "listeners per core, the stream alone") == 10_000
    assert value(plan, "Edge", "listeners per core, bound by requests") == pytest.approx(39_062.5 / 4.90625)
    assert value(plan, "Edge", "listeners per core, bound by bytes") == pytest.approx(
        10_000 * stream / (stream + timeline)
    )
    per_core = min(39_062.5 / 4.90625, 10_000 * stream / (stream + timeline))
    assert r.edge_listeners_per_core == pytest.approx(per_core)
    assert r.edge_cores == math.ceil(1_000_000 * 1.5 / per_core)
    m = r.edge_machines
    assert m == math.ceil(r.edge_cores / 16)
    # Origin, shared by the nodes: misses m caches x 5/s + m x 1 timeline object/s, joins 1,000,000 ÷ 500 s,
    # posts 100, votes 200, reactions 1,000 = 3,300 + 6m per second. Each node keeps 2,000 listeners beating
    # every 5 s: 400 beats/s. The busiest node, 0.1 + ((3,300 + 6m) ÷ n + 400) ÷ 1,000 ≤ 1 ÷ 1.5, first holds
    # at n = 21 for any m from 6 to 33.
    assert 6 <= m <= 33
    assert r.nodes == 21
    assert value(plan, "Origin", "heartbeats") == pytest.approx(21 * 400)
    assert r.origin_requests_per_s == pytest.approx(3_300 + 6 * m + 21 * 400)
    # Joining: 2,000/s to let in, one room for the instance at 200/s: 2,000/s is needed.
    assert (r.join_arrivals_per_s, r.join_capacity_per_s, r.join_rate_needed_per_s) == (2_000, 200, 2_000)
    # Redis: checks 2,000 + 2 x 100 + 200 + 1,000; the room 2,000; PUBLISH 1,300; counts 21 x 5; leases
    # 1 x 3 ÷ 10; owner lookups 20 x 2.
    assert r.redis_commands_per_s == pytest.approx(3_400 + 2_000 + 1_300 + 105 + 0.3 + 40)
    assert value(plan, "Redis", "bus: messages delivered") == pytest.approx(1_300 * 21)
    # PostgreSQL: posts 100 + votes 200 + listener peaks 21 ÷ 5 s.
    assert r.postgres_commits_per_s == pytest.approx(304.2)
    assert value(plan, "PostgreSQL", "connections, at most") == 21 * 15
    # Egress: every byte a listener fetches, x 8 bits, x the listeners.
    parts = ("audio parts", "playlists", "HTTP answer headers")
    assert stream == pytest.approx(sum(value(plan, "Edge", q) for q in parts))
    assert r.egress_bits_per_s == pytest.approx(1_000_000 * (stream + timeline) * 8)
    # A part: 4,096 B of AAC at 64 kbit/s (64,000 x 0.512 ÷ 8) and its fMP4 headers.
    header, payload = part_header_bytes(64_000, Layout())
    assert payload == 4_096
    assert value(plan, "Edge", "audio parts") == pytest.approx((4_096 + header) / 0.512)
    assert any("max_connections" in w for w in plan.warnings)  # 315 connections > PostgreSQL's 100


def test_a_slow_waiting_room_is_shown_with_the_rate_to_set(figures: Figures) -> None:
    # 1,000,000 in 100 s: 10,000/s to let in, against the default 200/s.
    plan = make_plan(Inputs(1_000_000, 64_000, join_window_s=100), figures, STAGE, Settings())
    r = plan.result
    assert (r.join_arrivals_per_s, r.join_capacity_per_s, r.join_rate_needed_per_s) == (10_000, 200, 10_000)
    assert value(plan, "Joining", "the last listener is let in after") == pytest.approx(1_000_000 / 200 / 60)
    assert value(plan, "Joining", "the longest line") == pytest.approx(9_800 * 100)
    assert value(plan, "Joining", "their returns, at least") == pytest.approx(9_800 * 100 / 30)
    assert any("PODIUM_JOIN_RATE_PER_S=10000" in w for w in plan.warnings)
    # Set as needed, no line forms.
    enough = make_plan(Inputs(1_000_000, 64_000, join_window_s=100), figures, STAGE, Settings(join_rate_per_s=10_000))
    assert not any("PODIUM_JOIN_RATE_PER_S" in w for w in enough.warnings)
    with pytest.raises(AssertionError):
        value(enough, "Joining", "the longest line")


def test_at_128k_the_bytes_bound_rules_and_needs_more_edge_cores(figures: Figures) -> None:
    # No posts, votes or reactions: the timeline is small, and the stream decides.
    quiet = {"posts_per_listener_per_hour": 0, "votes_per_listener_per_hour": 0, "reactions_per_listener_per_hour": 0}
    at_64 = make_plan(Inputs(1_300_000, 64_000, **quiet), figures, STAGE, Settings())
    at_128 = make_plan(Inputs(1_300_000, 128_000, **quiet), figures, STAGE, Settings())
    at_32 = make_plan(Inputs(1_300_000, 32_000, **quiet), figures, STAGE, Settings())
    # 64k: the stream alone gets the measured 10,000 per core; with a timeline request a second, the
    # requests bound gives 10,000 x 3.90625 ÷ 4.90625 = 7,962 (the bytes of a quiet timeline are fewer).
    assert value(at_64, "Edge", "listeners per core, the stream alone") == 10_000
    assert at_64.result.edge_listeners_per_core == pytest.approx(10_000 * 3.90625 / 4.90625)
    assert at_64.result.edge_cores == math.ceil(1_300_000 * 1.5 / (10_000 * 3.90625 / 4.90625)) == 245
    # 128k: a listener fetches 8,000 B/s more (the AAC doubles; fMP4 headers and playlists do not), so the
    # bytes bound, 10,000 x (the stream at 64k) ÷ (the stream at 128k + the timeline), rules.
    stream_64, stream_128 = value(at_64, "Edge", "the stream, all"), value(at_128, "Edge", "the stream, all")
    assert stream_128 - stream_64 == pytest.approx(8_000)
    assert value(at_128, "Edge", "listeners per core, the stream alone") == pytest.approx(
        10_000 * stream_64 / stream_128
    )
    by_bytes = 10_000 * stream_64 / (stream_128 + value(at_128, "Edge", "timeline"))
    assert at_128.result.edge_listeners_per_core == pytest.approx(by_bytes)
    assert at_128.result.edge_cores == math.ceil(1_300_000 * 1.5 / by_bytes) > at_64.result.edge_cores
    # Below the measured bitrate the requests bound holds: no fewer cores than at 64k.
    assert at_32.result.edge_cores == at_64.result.edge_cores
    # A bitrate other than the stage's is a what-if, and the plan says so.
    at_stage = make_plan(Inputs(1_300_000, STAGE_BITRATE, **quiet), figures, STAGE, Settings())
    assert any("what-if" in w for w in at_128.warnings) and not any("what-if" in w for w in at_stage.warnings)


def test_the_fmp4_overhead_is_that_of_a_real_part() -> None:
    """The plan's fMP4 headers per part are what Podium's packager wraps around real AAC frames."""
    encoder, packager = AacEncoder(bitrate=64_000), Packager(datetime(2026, 1, 1, tzinfo=UTC))
    noise = np.random.default_rng(7).normal(0, 3000, 48_000 * 3).astype(np.int16)
    parts: list[tuple[Part, int]] = []
    pending: list[bytes] = []
    for start in range(0, len(noise), 960):
        frames = encoder.encode(noise[start : start + 960])
        pending += frames
        for made in packager.push(frames):
            if isinstance(made, Part):
                aac = pending[: Layout().frames_per_part]
                del pending[: Layout().frames_per_part]
                parts.append((made, sum(len(f) for f in aac)))
    assert len(parts) >= 4
    header, _ = part_header_bytes(64_000, Layout())
    assert {len(part.data) - aac for part, aac in parts} == {header}


def test_the_stage_cpu_is_read_from_results_and_interpolated() -> None:
    text = "\n".join(
        [
            "<!-- stage:start -->",
            "- Date: 2026-11-25 00:51 UTC",
            "| speakers | podium serve CPU (%) | stage core alone (%) |",
            "|---:|---:|---:|",
            "| 0 (server idle) | 0.3 | - |",
            "| 1 | 7.1 | 4.8 |",
            "| 5 | 11.7 | 5.6 |",
            "| 13 | 18.8 | 9.4 |",
            "",
            "<!-- stage:end -->",
        ]
    )
    assert stage_cpu_from_results(text, 4, "R").percent == pytest.approx(7.1 + 3 * (11.7 - 7.1) / 4)
    assert stage_cpu_from_results(text, 13, "R").percent == pytest.approx(18.8)
    beyond = stage_cpu_from_results(text, 21, "R")
    assert beyond.percent == pytest.approx(18.8 + 8 * (18.8 - 11.7) / 8)
    assert "extrapolated" in beyond.source and "2026-11-25" in beyond.source
    with pytest.raises(InvalidInput, match="--stage-cpu-percent"):
        stage_cpu_from_results("no such section", 4, "R")


def test_the_repository_results_give_a_stage_figure() -> None:
    results = Path(__file__).parent.parent / "bench" / "RESULTS.md"
    stage = stage_cpu_from_results(results.read_text(encoding="utf-8"), 4, str(results))
    assert 0 < stage.percent < 100


@pytest.mark.parametrize(
    ("raw", "expected"), [("1300000", 1_300_000), ("1.3M", 1_300_000), ("1,300,000", 1_300_000), ("250k", 250_000)]
)
def test_listener_counts_read_as_people_write_them(raw: str, expected: int) -> None:
    assert parse_count(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("64k", 64_000), ("96K", 96_000), ("128000", 128_000)])
def test_bitrates_read_as_people_write_them(raw: str, expected: int) -> None:
    assert parse_bitrate(raw) == expected


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_figures(tmp_path)
    code, out, err = run_cli(capsys, "--listeners", "1.3M", "--bitrate", "64k", "--figures", str(path))
    assert code == 0, err
    assert "Podium plan: 1,300,000 listeners at 64 kbit/s" in out
    assert "listeners per core, the stream alone" in out and "= min(10,000, " in out
    assert "edge cores" in out and "= ⌈1,300,000 x 1.5 ÷ " in out
    assert str(path) in out  # the measured figures are named with their file
    assert "stage section" in out  # the stage's CPU, read from bench/RESULTS.md
    assert "Summary" in out and "Redis" in out and "PostgreSQL" in out


def test_the_figures_are_found_under_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bench").mkdir()
    path = write_figures(tmp_path / "bench")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "--listeners", "20000", "--stage-cpu-percent", "12")
    assert code == 0, err
    assert str(path) in out
    assert "12.0 % of a core" in out


def test_json_output_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_figures(tmp_path)
    code, out, _ = run_cli(capsys, "--listeners", "1300000", "--bitrate", "128k", "--figures", str(path), "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["inputs"]["bitrate_bps"] == 128_000
    assert plan["result"]["edge_cores"] > math.ceil(1_300_000 * 1.5 / 10_000)
    assert {s["title"].split(":")[0] for s in plan["sections"]} >= {"Edge", "Origin", "Redis", "PostgreSQL"}
    assert all(
        {"quantity", "formula", "value", "unit", "basis"} <= set(line) for s in plan["sections"] for line in s["lines"]
    )


BROKEN: list[tuple[Any, str]] = [
    ("{not json", "not valid JSON"),
    ([1, 2], "a JSON object"),
    ({**FIGURES, "machine": ""}, "machine must be a non-empty string"),
    ({k: v for k, v in FIGURES.items() if k != "icecast_listeners_per_core"}, "icecast_listeners_per_core is missing"),
    (
        {**FIGURES, "listeners_per_edge_core": {**FIGURES["listeners_per_edge_core"], "value": 0}},
        "listeners_per_edge_core.value must be a positive number",
    ),
    (
        {**FIGURES, "origin_requests_per_s_per_space": {"listeners_100": 5.0, "ratio": 1.0}},
        "origin_requests_per_s_per_space.listeners_10000 is missing",
    ),
    (
        {**FIGURES, "listeners_per_edge_core": {**FIGURES["listeners_per_edge_core"], "value": True}},
        "must be a positive number",
    ),
]


@pytest.mark.parametrize(("content", "message"), BROKEN)
def test_malformed_figures_fail_with_the_file_and_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, message: str
) -> None:
    path = tmp_path / "figures.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, out, err = run_cli(capsys, "--listeners", "1000", "--figures", str(path))
    assert code == 2
    assert out == ""
    assert str(path) in err and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listeners", "0"], "--listeners: '0' must be a whole number"),
        (["--listeners", "lots"], "--listeners: 'lots' is not a number of people"),
        (["--listeners", "1.5"], "must be a whole number"),
        (["--listeners", "1e999999999"], "is not a number of people"),
        (["--listeners", "1000", "--bitrate", "64x"], "--bitrate: '64x' is not a bitrate"),
        (["--listeners", "1000", "--bitrate", "8k"], "outside the sane range"),
        (["--listeners", "1000", "--headroom", "0.5"], "--headroom"),
        (["--listeners", "1000", "--spaces", "0"], "--spaces"),
        (["--listeners", "1000", "--stage-cpu-percent", "0"], "--stage-cpu-percent"),
    ],
)
def test_bad_inputs_give_exit_2_and_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, *argv, "--figures", str(write_figures(tmp_path)))
    assert code == 2
    assert out == "" and message in err and "Traceback" not in err


def test_a_missing_figures_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "figures.json"
    code, _, err = run_cli(capsys, "--listeners", "1000", "--figures", str(missing))
    assert code == 2
    assert f"{missing}: no such file" in err and "bench/edge.py" in err


@settings(max_examples=60, deadline=None)
@given(
    smaller=st.integers(1, 50_000_000),
    more=st.integers(0, 50_000_000),
    bitrate=st.integers(16, 320).map(lambda k: k * 1000),
    spaces=st.integers(1, 20),
)
def test_more_listeners_never_need_fewer_cores_or_nodes(smaller: int, more: int, bitrate: int, spaces: int) -> None:
    figures = Figures("f", "d", "m", 10_000, 64, 3.90625, "s", 5.0, 5.0, 1.0, 5_000, 64)
    few = make_plan(Inputs(smaller, bitrate, spaces=spaces), figures, STAGE, Settings())
    many = make_plan(Inputs(smaller + more, bitrate, spaces=spaces), figures, STAGE, Settings())
    assert many.result.edge_cores >= few.result.edge_cores
    assert many.result.nodes >= few.result.nodes
    assert many.result.egress_bits_per_s >= few.result.egress_bits_per_s
    # Never fewer edge cores than the measured figure gives for the stream alone at its own bitrate.
    assert few.result.edge_cores >= math.ceil(smaller * 1.5 / 10_000)
