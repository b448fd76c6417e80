from podium.audience.presence import Presence
from podium.clock import FakeClock
from podium.ids import ListenerId


def listener(n: int) -> ListenerId:
    return ListenerId(f"listener-{n:04d}")


def test_counts_listeners_and_keeps_the_peak() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3)
    for n in range(10):
        presence.beat(listener(n))
    assert presence.counts() == (presence.counts().__class__(10, 10))
    presence.leave(listener(0))
    counts = presence.counts()
    assert (counts.now, counts.peak) == (9, 10)


def test_a_listener_who_stops_is_dropped_after_the_missed_beats() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3)
    presence.beat(listener(1))
    presence.beat(listener(2))
    for _ in range(3):
        clock.advance(5)
        presence.beat(listener(2))  # 2 keeps beating, 1 has stopped
    assert presence.counts().now == 2  # three beats missed: still within the grace of half a beat
    clock.advance(2.6)
    assert presence.counts().now == 1
    assert presence.counts().peak == 2


def test_late_beats_within_grace_keep_a_listener() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3)
    presence.beat(listener(1))
    for _ in range(20):
        clock.advance(7)  # every beat late by 2 s
        presence.beat(listener(1))
    assert presence.counts().now == 1


def test_many_listeners_expire_together() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=1, missed_limit=2)
    for n in range(5000):
        presence.beat(listener(n))
    clock.advance(1)
    for n in range(100):
        presence.beat(listener(n))
    clock.advance(2)
    counts = presence.counts()
    assert (counts.now, counts.peak) == (100, 5000)


def test_peak_survives_from_storage() -> None:
    presence = Presence(FakeClock(), interval_s=5, missed_limit=3, peak=1234)
    presence.beat(listener(1))
    assert presence.counts().peak == 1234
