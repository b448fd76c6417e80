"""What Prometheus scrapes from `/metrics`: read at scrape time from the counters Podium keeps
anyway (presence, the waiting room, the governor, the stages, the database), so nothing is
counted twice and nothing costs anything between scrapes.

Each application has a registry of its own (never the global default one): several apps live in
one process in tests, and a node exports only what is its own. Per-space series exist only for
the spaces live on this node (stage running, pre-show included), so their number stays bounded.

`collect` runs on the event loop and only reads: the objects it reads are changed on that loop,
so a scrape sees them between two steps, never half-way through one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from podium.admission.classes import RequestClass
from podium.admission.joins import Joins
from podium.admission.load import Governor
from podium.service import Podium
from podium.web.protocol import connections_cut

# The classic text format: every Prometheus version reads it (the names here need nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INPUT_GAP_QUANTILES = (("0.5", "p50"), ("0.99", "p99"), ("1", "max"))


class PodiumCollector(Collector):
    """The metrics of one node, from its live objects."""

    def __init__(self, podium: Podium, joins: Joins, governor: Governor) -> None:
        self.podium = podium
        self.joins = joins
        self.governor = governor

    def collect(self) -> Iterator[Metric]:
        yield from self._listeners()
        yield from self._admission()
        yield from self._stages()
        yield from self._backends()

    def _listeners(self) -> Iterator[Metric]:
        live = self.podium.live_space_ids()
        per_space = GaugeMetricFamily(
            "podium_space_listeners",
            "Listeners of a live space now (with shared counts: over every node of the instance).",
            labels=["space"],
        )
        total = 0
        for space_id in live:
            now = self.podium.counts(space_id).now
            total += now
            per_space.add_metric([space_id], now)
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
        served = CounterMetricFamily(
            "podium_requests_served", "Requests let through the door, by request class.", labels=["class"]
        )
        shed = CounterMetricFamily(
            "podium_requests_shed",
            "Requests turned away because the node was full (503, or a join sent to wait), by request class.",
            labels=["class"],
        )
        crowded = CounterMetricFamily(
            "podium_requests_refused_per_address",
            "Requests refused (429) because their address had too many requests in the works, by class.",
            labels=["class"],
        )
        abandoned = CounterMetricFamily(
            "podium_requests_abandoned",
            "Requests whose client went away before the request had been read (a body cut short), by class.",
            labels=["class"],
        )
        for kind in RequestClass:
            served.add_metric([kind.label], governor.stats.served[kind])
            shed.add_metric([kind.label], governor.stats.shed[kind])
            crowded.add_metric([kind.label], governor.stats.crowded[kind])
            abandoned.add_metric([kind.label], governor.stats.abandoned[kind])
        yield served
        yield shed
        yield crowded
        yield abandoned
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
        loss = GaugeMetricFamily(
            "podium_speaker_packet_loss_ratio",
            "Recent share of a speaker's packets that never reached the stage (0 to 1).",
            labels=["space", "member"],
        )
        recovered = CounterMetricFamily(
            "podium_speaker_recovered_seconds",
            "A speaker's audio lost on the way and rebuilt from the next packet's in-band FEC.",
            labels=["space", "member"],
        )
        concealed = CounterMetricFamily(
            "podium_speaker_concealed_seconds",
            "A speaker's audio lost on the way and made up by loss concealment.",
            labels=["space", "member"],
        )
        buffered = GaugeMetricFamily(
            "podium_speaker_jitter_buffer_seconds",
            "Audio a speaker's jitter buffer holds now (about 20 ms on a clean path; more with jitter).",
            labels=["space", "member"],
        )
        now = time.monotonic()
        for space_id in self.podium.live_space_ids():
            for member_id, _name, health in self.podium.speaker_connections(space_id):
                labels = [space_id, member_id]
                loss.add_metric(labels, health.loss_fraction)
                recovered.add_metric(labels, health.recovered_ms / 1000)
                concealed.add_metric(labels, health.concealed_ms / 1000)
                buffered.add_metric(labels, health.delay_ms / 1000)
            stage = self.podium.stage(space_id)
            if stage is None:
                continue  # stopped between the two looks
            parts.add_metric([space_id], stage.parts_made)
            skipped.add_metric([space_id], stage.frames_skipped)
            speakers.add_metric([space_id], self.podium.speakers_connected(space_id))
            if stage.last_made_at is not None:
                age.add_metric([space_id], now - stage.last_made_at)
            recent = stage.input_gaps()
            if recent is not None:
                for quantile, key in INPUT_GAP_QUANTILES:
                    gaps.add_metric([space_id, quantile], recent[key] / 1000)
        yield from (parts, skipped, age, speakers, gaps, loss, recovered, concealed, buffered)

    def _backends(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "podium_database_statements",
            "Statements sent to the database; listeners and floods must not move it.",
            value=self.podium.spaces.statements,
        )
        dropped = getattr(self.podium.bus, "dropped", None)
        if isinstance(dropped, int):  # only buses that can drop (Redis): the in-process one cannot
            yield CounterMetricFamily(
                "podium_bus_dropped_events", "Bus events that could not be published and were dropped.", value=dropped
            )


def metrics_registry(podium: Podium, joins: Joins, governor: Governor) -> CollectorRegistry:
    """A registry of this node's own, with the collector in it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PodiumCollector(podium, joins, governor))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the text format, as of now."""
    return generate_latest(registry)
