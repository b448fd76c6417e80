"""The stage's bounded write queue: parts go first, order is kept, every drop is counted."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from podium.media.write_queue import WriteQueue


@dataclass(frozen=True)
class Part:
    n: int


@dataclass(frozen=True)
class Segment:
    n: int


@dataclass(frozen=True)
class SpeakerChange:
    n: int


def test_below_the_limit_everything_waits_in_order() -> None:
    queue: WriteQueue[object] = WriteQueue(4, Part)
    items = [Part(0), Part(1), Segment(0), SpeakerChange(0)]
    assert [queue.offer(item) for item in items] == [None] * 4
    assert [queue.take() for _ in range(5)] == [*items, None]
    assert not queue.dropped


def test_when_full_parts_go_first_then_the_newest_item() -> None:
    queue: WriteQueue[object] = WriteQueue(3, Part)
    for item in (Part(0), Segment(0), Part(1)):
        queue.offer(item)
    assert queue.offer(Part(2)) == Part(2)  # a new part, full: dropped
    assert queue.offer(Segment(1)) == Part(0)  # a segment takes the oldest part's place
    assert queue.offer(SpeakerChange(0)) == Part(1)
    assert queue.offer(Segment(2)) == Segment(2)  # nothing left to give way: dropped itself
    assert queue.dropped == {"part": 3, "segment": 1}
    assert [queue.take() for _ in range(3)] == [Segment(0), Segment(1), SpeakerChange(0)]


@given(st.lists(st.tuples(st.sampled_from(["part", "segment", "take"]), st.integers(0, 5)), max_size=200))
def test_the_bound_holds_nothing_is_lost_uncounted_and_order_is_kept(steps: list[tuple[str, int]]) -> None:
    limit = 5
    queue: WriteQueue[object] = WriteQueue(limit, Part)
    offered: list[object] = []
    taken: list[object] = []
    dropped: list[object] = []
    for n, (kind, _) in enumerate(steps):
        if kind == "take":
            item = queue.take()
            if item is not None:
                taken.append(item)
            continue
        item = Part(n) if kind == "part" else Segment(n)
        offered.append(item)
        lost = queue.offer(item)
        if lost is not None:
            dropped.append(lost)
        assert len(queue) <= limit
    while (item := queue.take()) is not None:
        taken.append(item)
    assert sorted(map(repr, taken + dropped)) == sorted(map(repr, offered))
    assert [item for item in offered if item in taken] == taken  # the kept keep their order
    assert sum(queue.dropped.values()) == len(dropped)
