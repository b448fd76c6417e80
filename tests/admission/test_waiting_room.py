"""The waiting room's rules, on a clock the test moves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.admission.waiting_room import Admitted, Waiting, WaitingRoom
from podium.errors import Conflict


def test_joiners_go_straight_in_while_the_bucket_holds_tokens() -> None:
    room = WaitingRoom(rate_per_s=10, burst=3, now=0.0, ticket_ttl_s=600)
    assert [room.arrive(0.0) for _ in range(3)] == [Admitted(None)] * 3
    fourth = room.arrive(0.0)
    assert isinstance(fourth, Waiting) and fourth.position == 1 and fourth.retry_after_s == 1
    # Retry-After is whole seconds; the page is told to the millisecond when its turn comes (0.1 s at 10/s).
    assert fourth.retry_after_ms == 100
    fifteenth = [room.arrive(0.0) for _ in range(14)][-1]
    assert isinstance(fifteenth, Waiting) and (fifteenth.retry_after_s, fifteenth.retry_after_ms) == (2, 1500)


def test_the_line_is_served_in_order_at_the_rate() -> None:
    room = WaitingRoom(rate_per_s=2, burst=1, now=0.0, ticket_ttl_s=600)
    assert room.arrive(0.0) == Admitted(None)
    tickets = [room.arrive(0.0) for _ in range(4)]
    assert [t.position for t in tickets if isinstance(t, Waiting)] == [1, 2, 3, 4]
    # After 1 s two numbers are called: the first two get in, the third is now first in line.
    assert room.redeem(2, 1.0) == Waiting(2, 1, 1, 500)
    assert room.redeem(0, 1.0) == Admitted(0)
    assert room.redeem(1, 1.0) == Admitted(1)
    # A newcomer queues behind those still waiting, even when the bucket has refilled.
    late = room.arrive(10.0)
    assert isinstance(late, Waiting) or room.waiting == 0


def test_a_ticket_is_used_once() -> None:
    room = WaitingRoom(rate_per_s=1, burst=1, now=0.0, ticket_ttl_s=600)
    room.arrive(0.0)
    waiting = room.arrive(0.0)
    assert isinstance(waiting, Waiting)
    assert room.redeem(waiting.seq, 2.0) == Admitted(waiting.seq)
    with pytest.raises(Conflict, match="already used"):
        room.redeem(waiting.seq, 2.5)
    with pytest.raises(Conflict, match="not known"):
        room.redeem(99, 2.5)


def test_nobody_is_admitted_while_paused_and_the_line_resumes_after() -> None:
    room = WaitingRoom(rate_per_s=5, burst=5, now=0.0, ticket_ttl_s=600)
    first = room.arrive(0.0, paused=True)
    assert isinstance(first, Waiting)
    assert isinstance(room.redeem(first.seq, 30.0, paused=True), Waiting)  # no refill while paused
    assert room.redeem(first.seq, 30.2) == Admitted(first.seq)


def test_used_tickets_are_remembered_for_their_lifetime_only() -> None:
    room = WaitingRoom(rate_per_s=100, burst=1, now=0.0, ticket_ttl_s=10)
    room.arrive(0.0)
    held = [room.arrive(0.0) for _ in range(50)]
    for outcome in held:
        assert isinstance(outcome, Waiting)
        assert room.redeem(outcome.seq, 5.0) == Admitted(outcome.seq)
    # Within the lifetime a replay is caught; past it the ticket's signature has expired, and the
    # room has forgotten the number (what it keeps is bounded by rate x lifetime).
    with pytest.raises(Conflict):
        room.redeem(held[0].seq, 14.0)
    room.arrive(16.0)
    assert room.used_remembered() == 0


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([1.0, 5.0, 50.0]),
    burst=st.integers(1, 20),
    steps=st.lists(st.tuples(st.floats(0, 0.5), st.booleans()), min_size=1, max_size=200),
)
def test_admissions_never_outrun_the_rate_and_come_in_order(
    rate: float, burst: int, steps: list[tuple[float, bool]]
) -> None:
    room = WaitingRoom(rate_per_s=rate, burst=burst, now=0.0, ticket_ttl_s=600)
    now = 0.0
    held: list[int] = []
    called_order: list[int] = []
    for gap, comes_back in steps:
        now += gap
        if comes_back and held:
            outcome = room.redeem(held[0], now)
            if isinstance(outcome, Admitted):
                called_order.append(held.pop(0))
        else:
            outcome = room.arrive(now)
            if isinstance(outcome, Waiting):
                held.append(outcome.seq)
    assert room.admitted <= burst + rate * now + 1e-9
    assert called_order == sorted(called_order)
