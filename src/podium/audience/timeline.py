"""The timeline: what happened in a space, one immutable object per interval, plus a small index.

Whatever a listener reads about the conversation is one of these cacheable objects (DESIGN,
bet 1): a cache tier serves a million readers from one origin request per object. The replay
reads the same objects to show the conversation in sync.

Sans-IO: `Timeline` collects events as they happen and `tick()` closes an interval, returning
its object. Invariants: sequence numbers start at 0 and grow by one per tick, every tick makes
an object (an empty interval is a small object, so readers never wait on a gap), and an object
never changes once made.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.errors import InvalidInput

REACTIONS = ("👏", "❤️", "😂", "😮", "🔥", "👍")
# Every KEYFRAME_EVERY-th object also carries the whole picture (top questions, pinned post, the
# latest comments), so a reader who arrives starts from the last keyframe and reads forward:
# like a video's key frames, it never needs anything but timeline objects.
KEYFRAME_EVERY = 10
RECENT_COMMENTS = 30
# Captions: at most this many utterances per interval (the latest state of each), so a flood of
# captions cannot grow an object; a keyframe carries the last RECENT_CAPTIONS finals.
MAX_CAPTIONS = 20
RECENT_CAPTIONS = 5


def check_reaction(raw: object) -> str:
    if raw not in REACTIONS:
        raise InvalidInput(f"emoji must be one of {' '.join(REACTIONS)}")
    return str(raw)


@dataclass
class Timeline:
    interval_s: float = 1.0
    # At most this many comments are shown per interval, chosen fairly (one per author first);
    # every post is stored and visible to moderators whatever is shown.
    max_comments: int = 20
    seed: int | None = None
    seq: int = -1
    _comments: list[dict[str, Any]] = field(default_factory=list)
    _removed: list[str] = field(default_factory=list)
    _reactions: Counter[str] = field(default_factory=Counter)
    _questions_changed: bool = False
    _pinned_changed: bool = False
    _rng: random.Random = field(init=False)
    _recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_COMMENTS))
    # Utterance id → its latest caption in this interval, oldest first.
    _captions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _recent_captions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_CAPTIONS))

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # -- events ------------------------------------------------------------------------------

    def comment(self, view: dict[str, Any]) -> None:
        self._comments.append(view)

    def removed(self, post_id: str) -> None:
        self._removed.append(post_id)
        self._comments = [c for c in self._comments if c["id"] != post_id]

    def react(self, emoji: str, count: int = 1) -> None:
        self._reactions[emoji] += count

    def questions_changed(self) -> None:
        self._questions_changed = True

    def caption(self, view: dict[str, Any]) -> None:
        """A caption's latest state (`view["id"]`: its utterance); a final replaces its partials.
        Past MAX_CAPTIONS utterances in one interval the oldest partial goes (else the oldest)."""
        key = view["id"]
        self._captions.pop(key, None)
        if len(self._captions) >= MAX_CAPTIONS:
            partials = [k for k, c in self._captions.items() if not c["final"]]
            del self._captions[partials[0] if partials else next(iter(self._captions))]
        self._captions[key] = view

    def pinned_changed(self) -> None:
        self._pinned_changed = True

    @property
    def recent_comments(self) -> list[dict[str, Any]]:
        return list(self._recent)

    def restore_recent(self, comments: list[dict[str, Any]], captions: list[dict[str, Any]] | None = None) -> None:
        """After a restart: the comments (and captions) a keyframe shows newcomers, from storage."""
        self._recent = deque(comments, maxlen=RECENT_COMMENTS)
        self._recent_captions = deque(captions or [], maxlen=RECENT_CAPTIONS)

    @property
    def recent_captions(self) -> list[dict[str, Any]]:
        return list(self._recent_captions)

    @property
    def has_news(self) -> bool:
        return bool(
            self._comments
            or self._reactions
            or self._removed
            or self._questions_changed
            or self._pinned_changed
            or self._captions
        )

    @property
    def next_is_keyframe(self) -> bool:
        return (self.seq + 1) % KEYFRAME_EVERY == 0

    @property
    def wants_questions(self) -> bool:
        return self._questions_changed or self.next_is_keyframe

    @property
    def wants_pinned(self) -> bool:
        return self._pinned_changed or self.next_is_keyframe

    # -- intervals ---------------------------------------------------------------------------

    def tick(
        self,
        now: datetime,
        listeners: dict[str, int],
        speakers: list[dict[str, Any]],
        questions: list[dict[str, Any]] | None = None,
        pinned: dict[str, Any] | None = None,
        comments_received: int | None = None,
    ) -> dict[str, Any]:
        """Close the interval. `questions` and `pinned` are passed when `wants_*` said so."""
        self.seq += 1
        received = len(self._comments)
        shown = self._choose_comments()
        item: dict[str, Any] = {
            "seq": self.seq,
            "at": now.isoformat().replace("+00:00", "Z"),
            "interval_s": self.interval_s,
            "comments": shown,
            "comments_received": received if comments_received is None else comments_received,
            "reactions": dict(self._reactions),
            "listeners": listeners,
            "speakers": speakers,
        }
        removed = set(self._removed)
        self._recent.extend(shown)
        if removed:
            item["removed"] = list(self._removed)
            self._recent = deque((c for c in self._recent if c["id"] not in removed), maxlen=RECENT_COMMENTS)
        if questions is not None:
            item["questions"] = questions
        if self._pinned_changed or self.seq % KEYFRAME_EVERY == 0:
            item["pinned"] = pinned
        if self._captions:
            item["captions"] = list(self._captions.values())
            self._recent_captions.extend(c for c in self._captions.values() if c["final"])
        if self.seq % KEYFRAME_EVERY == 0:
            item["keyframe"] = True
            item["recent_comments"] = list(self._recent)
            item["recent_captions"] = list(self._recent_captions)
        self._comments, self._removed, self._reactions, self._captions = [], [], Counter(), {}
        self._questions_changed = self._pinned_changed = False
        return item

    def _choose_comments(self) -> list[dict[str, Any]]:
        """Up to `max_comments`: one per author first (in a random order of authors), then others at
        random; shown oldest first. A flood from one account cannot crowd out everyone else."""
        if len(self._comments) <= self.max_comments:
            return list(self._comments)
        by_author: dict[str, list[int]] = {}
        for index, comment in enumerate(self._comments):
            by_author.setdefault(comment["author"], []).append(index)
        authors = list(by_author)
        self._rng.shuffle(authors)
        chosen = [by_author[a][0] for a in authors[: self.max_comments]]
        if len(chosen) < self.max_comments:
            rest = [i for a in authors for i in by_author[a][1:]]
            chosen += self._rng.sample(rest, self.max_comments - len(chosen))
        return [self._comments[i] for i in sorted(chosen)]


def index(seq: int, interval_s: float, state: str, base: str) -> dict[str, Any]:
    """The small, short-lived object readers poll: where the newest interval and keyframe are."""
    return {
        "latest": seq,
        "keyframe": max(0, seq - seq % KEYFRAME_EVERY),
        "first": 0,
        "interval_s": interval_s,
        "state": state,
        "item_url": f"{base}/{{seq}}.json",
    }
