"""Which classes a node sheds as it fills up, on a clock the test moves."""

from __future__ import annotations

import pytest

from podium.admission.classes import RequestClass, classify, needs_credential, stage_space
from podium.admission.load import Capacity, Governor
from podium.testing import FakeClock

C = RequestClass


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", "/whip/abc", C.STAGE),
        ("POST", "/api/spaces/abcdefghijkl/members/m1/mute", C.STAGE),
        ("POST", "/api/spaces/abcdefghijkl/end", C.STAGE),
        ("GET", "/api/spaces/abcdefghijkl/board", C.STAGE),
        ("GET", "/hls/abcdefghijkl/live.m3u8", C.LISTENING),
        ("GET", "/timeline/abcdefghijkl/index.json", C.LISTENING),
        ("GET", "/api/spaces/abcdefghijkl", C.LISTENING),
        ("GET", "/api/spaces/abcdefghijkl/questions", C.LISTENING),
        ("GET", "/api/spaces/abcdefghijkl/stage", C.STAGE),
        ("GET", "/api/spaces", C.JOIN),
        ("GET", "/api/sessions/me", C.JOIN),
        ("POST", "/api/spaces/abcdefghijkl/join", C.JOIN),
        ("GET", "/s/abcdefghijkl", C.JOIN),
        ("GET", "/static/listen.js", C.JOIN),
        ("POST", "/api/spaces/abcdefghijkl/posts", C.POST),
        ("POST", "/api/spaces/abcdefghijkl/questions/p1/vote", C.POST),
        ("POST", "/api/spaces/abcdefghijkl/heartbeat", C.POST),
        ("POST", "/api/spaces/abcdefghijkl/reactions", C.REACTION),
        ("GET", "/feed.xml", C.OTHER),
        ("GET", "/api/spaces/abcdefghijkl/recording", C.OTHER),  # hashes the recording: shed first
        ("POST", "/api/sessions", C.OTHER),
        ("GET", "/no/such/thing", C.OTHER),
        ("GET", "/host/abcdefghijkl", C.JOIN),  # the host's page is a page; its calls carry the token
        ("GET", "/metrics", C.STAGE),
    ],
)
def test_requests_are_classed_by_method_and_path(method: str, path: str, kind: RequestClass) -> None:
    assert classify(method, path) is kind


def test_only_probes_and_preflights_are_stage_requests_without_a_token() -> None:
    assert needs_credential("POST", "/api/spaces/abcdefghijkl/moderation")
    assert needs_credential("POST", "/whip/abcdefghijkl")
    assert not needs_credential("GET", "/healthz")
    assert not needs_credential("OPTIONS", "/whip/abcdefghijkl")
    assert stage_space("/whip/abcdefghijkl/session-1") == "abcdefghijkl"
    assert stage_space("/api/spaces/abcdefghijkl/end") == "abcdefghijkl"
    assert stage_space("/api/spaces/") is None
    assert stage_space("/healthz") is None


def fill(governor: Governor, kind: RequestClass, count: int) -> None:
    for _ in range(count):
        assert governor.admit(kind)


def test_lower_classes_are_shed_first_as_requests_pile_up() -> None:
    clock = FakeClock()
    governor = Governor(Capacity(max_in_flight=100, max_lag_ms=1000, hold_s=2), clock)
    fill(governor, C.STAGE, 55)  # pressure 0.55: everything else gets through
    assert governor.shed_classes() == [C.OTHER]
    assert not governor.admit(C.OTHER)
    assert governor.admit(C.REACTION)
    fill(governor, C.STAGE, 20)  # 0.76
    assert governor.shed_classes() == [C.POST, C.REACTION, C.OTHER]
    fill(governor, C.STAGE, 15)  # 0.91: joins wait in line, they are not refused here
    assert governor.shedding(C.JOIN)
    assert governor.admit(C.JOIN)
    fill(governor, C.STAGE, 200)  # far past capacity: the stage and listeners already in go on
    assert governor.admit(C.STAGE) and governor.admit(C.LISTENING)
    assert governor.stats.shed[C.STAGE] == governor.stats.shed[C.LISTENING] == 0


def test_one_hiccup_of_the_event_loop_sheds_nothing() -> None:
    governor = Governor(Capacity(max_lag_ms=100), FakeClock())
    governor.observe_lag(0)
    governor.observe_lag(300)  # one 300 ms stall (a garbage collection, a page of the disk)
    assert governor.shed_classes() == []


def test_held_playlist_reloads_are_not_counted_as_work() -> None:
    governor = Governor(Capacity(max_in_flight=10), FakeClock())
    fill(governor, C.LISTENING, 1000)
    assert governor.in_flight == 0 and governor.shed_classes() == []


def test_event_loop_lag_sheds_and_shedding_stops_after_the_hold() -> None:
    clock = FakeClock()
    governor = Governor(Capacity(max_in_flight=100, max_lag_ms=100, hold_s=2), clock)
    for _ in range(10):  # half a second 80 ms late: 0.8
        governor.observe_lag(80)
    assert governor.shed_classes() == [C.POST, C.REACTION, C.OTHER]
    for _ in range(10):  # the loop is back on time
        governor.observe_lag(0)
    clock.advance(1.0)
    assert governor.shedding(C.POST), "shedding holds for hold_s, so that it does not flap"
    clock.advance(1.1)
    assert governor.shed_classes() == []
    assert governor.admit(C.POST)


def test_in_flight_shedding_lifts_as_soon_as_the_work_is_done() -> None:
    governor = Governor(Capacity(max_in_flight=10), FakeClock())
    fill(governor, C.STAGE, 7)
    assert not governor.admit(C.POST)
    governor.done(C.STAGE)
    assert governor.admit(C.POST), "a node below a class's share serves it at once"
