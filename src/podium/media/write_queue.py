"""What a stage has made and the disk has not taken yet: a bounded queue that drops, never grows.

Sans-IO: the stage offers items as its tick makes them (never waiting), its writer takes them in
order. Invariants:

- At most `limit` items wait; offering never blocks and never raises.
- When full, a part goes first: the newest offered part is dropped, or, to make room for a
  segment or a speaker change, the oldest waiting part. A part only makes the open segment
  crash-proof; the segment, when it comes, carries the same audio.
- With no part left to drop, the offered item itself is dropped (a segment: a hole in the
  recording, never in the live stream, which listeners get from memory).
- Every drop is counted by kind; what was kept keeps its order.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class WriteQueue(Generic[Item]):
    def __init__(self, limit: int, is_part: type) -> None:
        if limit < 1:
            raise ValueError("a write queue holds at least one item")
        self.limit = limit
        self._is_part = is_part
        self._items: deque[Item] = deque()
        self.dropped: Counter[str] = Counter()  # by kind: "part", "segment", "speaker change"...

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: Item) -> Item | None:
        """Queue `item`; returns what was dropped to keep the bound (None if nothing was)."""
        if len(self._items) < self.limit:
            self._items.append(item)
            return None
        if isinstance(item, self._is_part):
            self._count(item)
            return item
        for index, waiting in enumerate(self._items):
            if isinstance(waiting, self._is_part):
                del self._items[index]
                self._items.append(item)
                self._count(waiting)
                return waiting
        self._count(item)
        return item

    def take(self) -> Item | None:
        """The oldest waiting item, or None when there is none."""
        return self._items.popleft() if self._items else None

    def _count(self, item: Item) -> None:
        self.dropped[_kind(item)] += 1


def _kind(item: object) -> str:
    name = type(item).__name__
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()
