"""What Prometheus scrapes from `/metrics`: read at scrape time from the counters Podium keeps
anyway, so nothing is counted twice and nothing costs anything between scrapes.

`/metrics` may ask for no account, and a private space's id opens its timeline and stage: so a
private space is labelled `private-` and 12 hex digits of HMAC-SHA256(its id) under a key derived
from the instance secret: stable across scrapes, restarts and nodes, no way back without the secret.

Each app has a registry of its own (several live in one process in tests); per-space series exist
only for the spaces live on this node, so their number stays bounded. `collect` runs on the event
loop and only reads: a scrape sees the objects between two steps, never half-way through one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from podium.admission.classes import RequestClass
from podium.admission.joins import Joins
from podium.admission.load import Governor
from podium.backends.interfaces import Bus, SpaceStore
from podium.clock import Clock
from podium.errors import NotFound
from podium.ids import SpaceId
from podium.spaces.directory import SpaceDirectory
from podium.spaces.listeners import Listeners
from podium.spaces.stages import StageManager
from podium.web.protocol import connections_cut

# The classic text format: every Prometheus version reads it (the names here need nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INPUT_GAP_QUANTILES = (("0.5", "p50"), ("0.99", "p99"), ("1", "max"))


@dataclass(eq=False)  # a registry keeps its collectors in a dict: hashed by identity
class PodiumCollector(Collector):
    """The metrics of one node, from its live objects."""

    directory: SpaceDirectory
    stages: StageManager
    listeners: Listeners
    store: SpaceStore
    bus: Bus
    joins: Joins
    governor: Governor
    clock: Clock

    def __post_init__(self) -> None:
        self._label_key = label_key(self.directory.links.key)

    def space_label(self, space_id: SpaceId) -> str:
        """The `space` label: the id of a public space, a keyed hash of a private one's."""
        try:
            private = self.directory.open_space(space_id).private
        except NotFound:
            private = True  # ended between two looks: nothing said about it that is not needed
        return private_label(self._label_key, space_id) if private else space_id

    def collect(self) -> Iterator[Metric]:
        yield from self._listeners()
        yield from self._admission()
        yield from self._stages()
        yield from self._backends()

    def _listeners(self) -> Iterator[Metric]:
        live = self.stages.live_space_ids()
        per_space = GaugeMetricFamily(
            "podium_space_listeners",
            "Listeners of a live space now (with shared counts: over every node of the instance).",
            labels=["space"],
        )
        total = 0
        for space_id in live:
            now = self.listeners.counts(space_id).now
            total += now
            per_space.add_metric([self.space_label(space_id)], now)
        yield per_space
        yield GaugeMetricFamily("podium_listeners", "Listeners now, over every space live on this node.", value=total)
        yield GaugeMetricFamily(
            "podium_live_spaces", "Spaces whose stage runs on this node now (pre-shows included).", value=len(live)
        )

    def _admission(self) -> Iterator[Metric]:
        joins, governor = self.joins, self.governor
        yield CounterMetricFamily(
            "podium_joins_admitted",
            "Joins let in (a listener pass given), since the node started.",
            value=joins.admitted,
        )
        yield CounterMetricFamily(
            "podium_joins_queued",
            "Joins sent to the waiting room (202 with a place in line), since the node started.",
            value=joins.queued,
        )
        yield CounterMetricFamily(
            "podium_tokens_refused",
            "Tickets, passes and puzzle answers refused for their signature alone (a flood shows here).",
            value=joins.signer.refused,
        )
        by_class = {  # the governor's counts by request class, by the name of their stat
            "served": CounterMetricFamily(
                "podium_requests_served", "Requests let through the door, by request class.", labels=["class"]
            ),
            "shed": CounterMetricFamily(
                "podium_requests_shed",
                "Requests turned away because the node was full (503, or a join sent to wait), by request class.",
                labels=["class"],
            ),
            "crowded": CounterMetricFamily(
                "podium_requests_refused_per_address",
                "Requests refused (429) because their address had too many requests in the works, by class.",
                labels=["class"],
            ),
            "abandoned": CounterMetricFamily(
                "podium_requests_abandoned",
                "Requests whose client went away before the request had been read (a body cut short), by class.",
                labels=["class"],
            ),
        }
        for stat, family in by_class.items():
            for kind in RequestClass:
                family.add_metric([kind.label], getattr(governor.stats, stat)[kind])
            yield family
        cut = CounterMetricFamily(
            "podium_connections_cut",
            "Connections answered and closed by the protocol itself: a request head or body too slow "
            "(408), a head too large (431, 414).",
            labels=["reason"],
        )
        for reason, count in connections_cut().items():
            cut.add_metric([reason], count)
        yield cut
        yield GaugeMetricFamily(
            "podium_requests_in_flight",
            "Requests being worked on now (held playlist reloads not counted).",
            value=governor.in_flight,
        )
        yield GaugeMetricFamily(
            "podium_load_pressure_ratio",
            "How full the node is: 1 is full; request classes are shed from 0.5 up.",
            value=governor.pressure(),
        )
        yield GaugeMetricFamily(
            "podium_event_loop_lag_seconds",
            "How late the event loop wakes a sleeper, over the last half second.",
            value=governor.lag_ms / 1000,
        )

    def _stages(self) -> Iterator[Metric]:
        parts = CounterMetricFamily(
            "podium_stage_parts_produced",
            "LL-HLS parts the stage made since it started on this node; flat means listeners hear nothing new.",
            labels=["space"],
        )
        skipped = CounterMetricFamily(
            "podium_stage_frames_skipped",
            "20 ms program frames skipped to catch up after a stall: each is a gap listeners hear.",
            labels=["space"],
        )
        age = GaugeMetricFamily(
            "podium_stage_last_part_age_seconds",
            "Time since the stage made its newest part; past a part's length the program is late.",
            labels=["space"],
        )
        speakers = GaugeMetricFamily(
            "podium_stage_speakers", "Speakers connected to the stage now (WebRTC sessions).", labels=["space"]
        )
        gaps = GaugeMetricFamily(
            "podium_stage_input_gap_seconds",
            "Time between a speaker's frames reaching the stage (20 ms is on time), over the recent ones.",
            labels=["space", "quantile"],
        )
        per_speaker: dict[
            str, GaugeMetricFamily | CounterMetricFamily
        ] = {  # by the health field each reads: milliseconds, but for the loss (a ratio)
            "loss_fraction": GaugeMetricFamily(
                "podium_speaker_packet_loss_ratio",
                "Recent share of a speaker's packets that never reached the stage (0 to 1).",
                labels=["space", "member"],
            ),
            "recovered_ms": CounterMetricFamily(
                "podium_speaker_recovered_seconds",
                "A speaker's audio lost on the way and rebuilt from the next packet's in-band FEC.",
                labels=["space", "member"],
            ),
            "concealed_ms": CounterMetricFamily(
                "podium_speaker_concealed_seconds",
                "A speaker's audio lost on the way and made up by loss concealment.",
                labels=["space", "member"],
            ),
            "delay_ms": GaugeMetricFamily(
                "podium_speaker_jitter_buffer_seconds",
                "Audio a speaker's jitter buffer holds now (about 20 ms on a clean path; more with jitter).",
                labels=["space", "member"],
            ),
        }
        now = self.clock.monotonic()  # the clock `stage.last_made_at` is read from
        for space_id in self.stages.live_space_ids():
            label = self.space_label(space_id)
            for member_id, _name, health in self.stages.speaker_connections(space_id):
                for name, family in per_speaker.items():
                    value = getattr(health, name)
                    family.add_metric([label, member_id], value if name == "loss_fraction" else value / 1000)
            stage = self.stages.stage(space_id)
            if stage is None:
                continue  # stopped between the two looks
            parts.add_metric([label], stage.parts_made)
            skipped.add_metric([label], stage.frames_skipped)
            speakers.add_metric([label], self.stages.speakers_connected(space_id))
            if stage.last_made_at is not None:
                age.add_metric([label], now - stage.last_made_at)
            recent = stage.input_gaps()
            if recent is not None:
                for quantile, key in INPUT_GAP_QUANTILES:
                    gaps.add_metric([label, quantile], recent[key] / 1000)
        yield from (parts, skipped, age, speakers, gaps, *per_speaker.values())

    def _backends(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "podium_database_statements",
            "Statements sent to the database; listeners and floods must not move it.",
            value=self.store.statements,
        )
        dropped = getattr(self.bus, "dropped", None)
        if isinstance(dropped, int):  # only buses that can drop (Redis): the in-process one cannot
            yield CounterMetricFamily(
                "podium_bus_dropped_events", "Bus events that could not be published and were dropped.", value=dropped
            )


def label_key(instance_key: str) -> bytes:
    """The key private spaces' labels are hashed with, derived from a key of the instance's secret."""
    return hmac.new(instance_key.encode(), b"podium.ops.metrics.labels.v1", hashlib.sha256).digest()


def private_label(key: bytes, space_id: str) -> str:
    """`private-` and 12 hex digits of HMAC-SHA256(key, id): no way back to the id without the key."""
    return "private-" + hmac.new(key, space_id.encode(), hashlib.sha256).hexdigest()[:12]


def metrics_registry(collector: PodiumCollector) -> CollectorRegistry:
    """A registry of this node's own, with the collector in it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
