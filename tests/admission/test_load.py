"""Which classes a node sheds as it fills up, on a clock the test moves."""

from __future__ import annotations

from podium.admission.classes import RequestClass
from podium.admission.load import Capacity, Governor
from podium.testing import FakeClock

C = RequestClass


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
