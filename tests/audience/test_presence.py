import secrets

from podium.audience.presence import Counts, Presence, presence_key, sample_point
from podium.ids import ListenerId
from podium.testing import FakeClock

KEY = presence_key("an instance secret of at least 32 characters", "abcdefghijkl")


def listener(n: int) -> ListenerId:
    return ListenerId(f"listener-{n:04d}")


def test_counts_listeners_and_keeps_the_peak() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY)
    for n in range(10):
        presence.beat(listener(n))
    assert presence.counts() == Counts(10, 10, 10, 1.0)
    presence.leave(listener(0))
    counts = presence.counts()
    assert (counts.now, counts.peak) == (9, 10)


def test_a_listener_who_stops_is_dropped_after_the_missed_beats() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY)
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
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY)
    presence.beat(listener(1))
    for _ in range(20):
        clock.advance(7)  # every beat late by 2 s
        presence.beat(listener(1))
    assert presence.counts().now == 1


def test_many_listeners_expire_together() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=1, missed_limit=2, key=KEY, target_sampled=10_000)
    for n in range(5000):
        presence.beat(listener(n))
    clock.advance(1)
    for n in range(100):
        presence.beat(listener(n))
    clock.advance(2)
    counts = presence.counts()
    assert (counts.now, counts.peak) == (100, 5000)


def test_peak_survives_from_storage() -> None:
    presence = Presence(FakeClock(), interval_s=5, missed_limit=3, key=KEY, peak=1234)
    presence.beat(listener(1))
    assert presence.counts().peak == 1234


def random_listener() -> ListenerId:
    return ListenerId(secrets.token_hex(12))  # as the pages make them


def test_a_huge_audience_is_sampled_and_still_counted_within_a_few_percent() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY, target_sampled=2000)
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
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY, target_sampled=500)
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
    points = [sample_point(KEY, random_listener()) for _ in range(10_000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(p < 0.1 for p in points) / 10_000 - 0.1) < 0.02
    assert sample_point(KEY, ListenerId("not-hex-at-all")) == sample_point(KEY, ListenerId("not-hex-at-all"))


def test_a_client_cannot_pick_an_id_that_stays_in_the_sample() -> None:
    """Ids that start with zeros (the lowest points under an unkeyed scheme) fall anywhere, and the
    same id falls elsewhere in another space (another key)."""
    zeros = [ListenerId("00000000" + secrets.token_hex(8)) for _ in range(2000)]
    points = [sample_point(KEY, lid) for lid in zeros]
    assert abs(sum(p < 0.5 for p in points) / len(points) - 0.5) < 0.05
    other = presence_key("an instance secret of at least 32 characters", "mnopqrstuvwx")
    assert sum(sample_point(other, lid) == sample_point(KEY, lid) for lid in zeros) == 0


def test_listeners_from_one_address_are_counted_up_to_the_bound() -> None:
    clock = FakeClock()
    presence = Presence(clock, interval_s=5, missed_limit=3, key=KEY, max_per_address=5)
    for n in range(50):
        presence.beat(listener(n), "203.0.113.7")
    assert presence.counts().now == 5
    assert [presence.counted(listener(n)) for n in (0, 4, 5, 49)] == [True, True, False, False]
    presence.beat(listener(100), "198.51.100.2")  # another network is not held back
    assert presence.counts().now == 6
    # A place comes free when one of them leaves or goes silent; the next one takes it.
    presence.leave(listener(0))
    presence.beat(listener(5), "203.0.113.7")
    assert presence.counted(listener(5)) and presence.counts().now == 6
    clock.advance(20)
    for n in range(10, 15):
        presence.beat(listener(n), "203.0.113.7")
    assert presence.counts().now == 5
