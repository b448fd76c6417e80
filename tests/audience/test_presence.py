import secrets

from podium.audience.presence import Counts, Presence, sample_point
from podium.clock import FakeClock
from podium.ids import ListenerId


def listener(n: int) -> ListenerId:
    return ListenerId(f"listener-{n:04d}")


def test_counts_listeners_and_keeps_the_peak() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3)
    for n in range(10):
        presence.beat(listener(n))
    assert presence.counts() == Counts(10, 10, 10, 1.0)
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
    presence = Presence(clock, interval_s=1, missed_limit=2, target_sampled=10_000)
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


def random_listener() -> ListenerId:
    return ListenerId(secrets.token_hex(12))  # as the pages make them


def test_a_huge_audience_is_sampled_and_still_counted_within_a_few_percent() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, target_sampled=2000)
    audience = [random_listener() for _ in range(100_000)]
    beats = 0
    for _ in range(3):  # three beat intervals; each listener beats only when in the sample
        for lid in audience:
            if presence.in_sample(lid):
                presence.beat(lid)
                beats += 1
        clock.advance(5)
    counts = presence.counts()
    assert counts.sample_rate < 0.05  # most listeners send nothing at all
    assert beats < 100_000 + 3 * 5_000  # the joining wave, then a few thousand beats per interval
    assert abs(counts.now - 100_000) / 100_000 < 0.06
    assert abs(counts.unique - 100_000) / 100_000 < 0.06
    assert counts.peak >= counts.now


def test_sampling_relaxes_when_the_audience_shrinks() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, target_sampled=500)
    audience = [random_listener() for _ in range(20_000)]
    for lid in audience:
        if presence.in_sample(lid):
            presence.beat(lid)
    assert presence.sample_rate < 0.1
    stayers = audience[:300]
    for _ in range(6):  # everyone else leaves; the stayers keep beating when sampled
        clock.advance(5)
        for lid in stayers:
            if presence.in_sample(lid):
                presence.beat(lid)
    assert presence.sample_rate == 1.0
    clock.advance(5)
    for lid in stayers:
        presence.beat(lid)
    assert presence.counts().now == 300


def test_sample_points_are_stable_and_spread() -> None:
    points = [sample_point(random_listener()) for _ in range(10_000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(p < 0.1 for p in points) / 10_000 - 0.1) < 0.02
    assert sample_point(ListenerId("not-hex-at-all")) == sample_point(ListenerId("not-hex-at-all"))
