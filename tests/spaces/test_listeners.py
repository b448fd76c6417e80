"""Listener counts over nodes: a node's count is the other nodes' last reports plus its own
listeners now, so one node alone (its shared counts in memory) counts each beat at once, and
nodes that share counts agree once each has reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from podium.backends.counts import MemoryCounts
from podium.backends.memory_bus import MemoryBus
from podium.backends.sql import SqlSpaceStore
from podium.delivery.links import LinkSigner
from podium.domain.space import Space
from podium.domain.tokens import TokenSigner
from podium.ids import ListenerId
from podium.settings import Settings
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import Listeners
from podium.testing import FakeClock

SECRET = "s" * 48


@dataclass
class Node:
    directory: SpaceDirectory
    listeners: Listeners

    async def beat(self, space: Space, *listeners: str) -> None:
        for n, listener in enumerate(listeners):
            await self.listeners.heartbeat(space.id, ListenerId(listener), f"198.51.100.{n + 1}")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlSpaceStore]:
    found = SqlSpaceStore(f"sqlite:///{tmp_path / 'podium.db'}")
    yield found
    await found.close()


def node(name: str, store: SqlSpaceStore, counts: MemoryCounts, settings: Settings, clock: FakeClock) -> Node:
    directory = SpaceDirectory(settings, store, MemoryBus(), TokenSigner(SECRET), LinkSigner("k" * 40), clock, name)
    listeners = Listeners(directory, counts, presence_secret=SECRET, between_nodes=True)
    return Node(directory, listeners)


async def test_one_node_counts_each_beat_at_once_and_nodes_agree_once_they_report(
    tmp_path: Path, store: SqlSpaceStore
) -> None:
    settings = Settings.load({}, data_dir=tmp_path)
    clock = FakeClock(datetime.now(UTC))
    counts = MemoryCounts(ttl_s=3.0)
    a, b = node("a", store, counts, settings, clock), node("b", store, counts, settings, clock)
    space = (await a.directory.create_space("A talk", None)).space
    await a.beat(space, "listener-0001", "listener-0002")
    await a.listeners.share_counts()
    assert a.listeners.counts(space.id).now == 2
    await a.beat(space, "listener-0003")  # counted here before the next report
    assert a.listeners.counts(space.id).now == 3
    await b.directory.get_space(space.id)
    await b.beat(space, "listener-0004")
    await b.listeners.share_counts()
    # b knows a's last report (2) and its own listener now; a learns of b's at its next round.
    assert b.listeners.counts(space.id).now == 3
    await a.listeners.share_counts()
    await b.listeners.share_counts()
    assert a.listeners.counts(space.id).now == b.listeners.counts(space.id).now == 4
    assert a.listeners.counts(space.id).peak == 4
