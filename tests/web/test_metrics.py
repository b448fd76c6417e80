"""`/metrics`: what an operator's Prometheus reads, and that it follows the audience."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from podium.admission.gate import Gate
from podium.testing import eventually
from podium.web.routes import TABLE
from tests.listeners import beat
from tests.web.test_api import create

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[list[Metric], Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    families = list(text_string_to_metric_families(response.text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return families, samples


async def value(client: httpx.AsyncClient, name: str, **labels: str) -> float | None:
    _, samples = await scrape(client)
    return samples.get((name, tuple(sorted(labels.items()))))


async def in_preshow(client: httpx.AsyncClient) -> dict:
    """A space whose stage runs: scheduled within the pre-show lead, so the stream opens at once."""
    space = await create(client, starts_at=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())

    async def opened() -> bool:
        return bool((await client.get(f"/api/spaces/{space['id']}")).json()["preshow"])

    await eventually(opened, "the pre-show opened")  # the schedule looks every quarter second
    return space


@pytest.fixture
async def door(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind its door, as served: requests are classed and counted (and shed) there."""
    state = app.state
    gate = Gate(app, state.governor, 1 << 20, TABLE.door, state.signer, state.joins.signer, max_per_address=64)
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://podium.test") as c:
        yield c


async def test_metrics_parse_and_each_says_what_it_measures(client: httpx.AsyncClient) -> None:
    families, samples = await scrape(client)
    names = {f.name for f in families}
    assert names >= {
        "podium_listeners",
        "podium_space_listeners",
        "podium_live_spaces",
        "podium_joins_admitted",
        "podium_joins_queued",
        "podium_requests_served",
        "podium_requests_shed",
        "podium_stage_parts_produced",
        "podium_stage_speakers",
        "podium_stage_last_part_age_seconds",
        "podium_speaker_packet_loss_ratio",
        "podium_speaker_recovered_seconds",
        "podium_speaker_concealed_seconds",
        "podium_speaker_jitter_buffer_seconds",
        "podium_database_statements",
    }
    for family in families:
        assert family.name.startswith("podium_") and family.documentation, family.name
        assert family.type in ("counter", "gauge"), family.name
        assert all(s.name.endswith("_total") for s in family.samples) or family.type != "counter"
    # Every request class has its pair of counters; nothing is live, so nothing is per space.
    classes = {"stage", "listening", "join", "post", "reaction", "other"}
    assert {dict(labels)["class"] for name, labels in samples if name == "podium_requests_shed_total"} == classes
    assert samples[("podium_listeners", ())] == 0 and samples[("podium_live_spaces", ())] == 0
    assert not any(dict(labels).get("space") for _, labels in samples)
    assert (await client.head("/metrics")).status_code == 200


async def test_listeners_joins_and_parts_move_while_a_space_is_live(client: httpx.AsyncClient) -> None:
    space = await in_preshow(client)
    sid = space["id"]
    assert await value(client, "podium_space_listeners", space=sid) == 0
    assert await value(client, "podium_live_spaces") == 1
    for n in range(3):
        answer = await beat(client, sid, f"listener-{n}")
        assert answer.status_code == 200
    assert await value(client, "podium_space_listeners", space=sid) == 3
    assert await value(client, "podium_listeners") == 3

    admitted = await value(client, "podium_joins_admitted_total")
    joined = await client.post(f"/api/spaces/{sid}/join", json={"client_id": "browser-0001"})
    assert joined.status_code == 200 and joined.json()["admitted"]
    assert await value(client, "podium_joins_admitted_total") == (admitted or 0) + 1

    # The pre-show's stage makes parts (of hold audio) on its own; nobody is on stage yet.
    assert await value(client, "podium_stage_speakers", space=sid) == 0
    first = await value(client, "podium_stage_parts_produced_total", space=sid)
    assert first is not None

    async def produced() -> bool:
        return (await value(client, "podium_stage_parts_produced_total", space=sid) or 0) > first

    await eventually(produced, "a part was produced")
    age = await value(client, "podium_stage_last_part_age_seconds", space=sid)
    assert age is not None and 0 <= age < 5

    # An ended space leaves: the series are the live spaces', no more.
    ended = await client.post(f"/api/spaces/{sid}/end", headers={"Authorization": f"Bearer {space['host_token']}"})
    assert ended.status_code == 200
    _, samples = await scrape(client)
    assert not any(dict(labels).get("space") == sid for _, labels in samples)
    assert samples[("podium_listeners", ())] == 0


async def test_requests_are_counted_by_class_and_metrics_are_never_shed(
    app: Starlette, door: httpx.AsyncClient
) -> None:
    space = await create(door)
    before = await value(door, "podium_requests_served_total", **{"class": "join"})
    joined = await door.post(f"/api/spaces/{space['id']}/join", json={"client_id": "browser-0001"})
    assert joined.status_code == 200
    assert await value(door, "podium_requests_served_total", **{"class": "join"}) == (before or 0) + 1
    # The scrape is counted with the probes: first class, never shed.
    scrapes = await value(door, "podium_requests_served_total", **{"class": "stage"})
    assert scrapes is not None and scrapes >= 3

    # A stalled event loop (as the lag sampler would report it): the node sheds, and says so.
    for _ in range(10):
        app.state.governor.observe_lag(10_000)
    refused = await door.get("/api/nothing-here")
    assert refused.status_code == 503
    assert await value(door, "podium_requests_shed_total", **{"class": "other"}) == 1
    assert (await value(door, "podium_load_pressure_ratio") or 0) >= 1
