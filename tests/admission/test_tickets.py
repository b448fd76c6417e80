"""Tickets, passes and puzzles: refused on their signature alone, and bound to one client."""

from __future__ import annotations

import itertools
import time

import pytest

from podium.admission.joins import BASE_DIFFICULTY_BITS, MAX_DIFFICULTY_BITS, Surge
from podium.admission.tickets import (
    BadToken,
    ExpiredToken,
    SpentAnswers,
    TicketSigner,
    client_hash,
    leading_zero_bits,
    pow_digest,
)
from podium.errors import Forbidden
from podium.ids import SpaceId

SECRET = "s" * 48
SPACE = SpaceId("abcdefghijkl")
ME = client_hash("client-0001")
HOME = client_hash("198.51.100.7")  # the network a puzzle is solved from


def test_a_ticket_round_trips_and_refuses_tampering_other_spaces_and_other_clients() -> None:
    signer = TicketSigner(SECRET)
    token = signer.ticket(SPACE, "e1", 7, ME)
    assert signer.open_ticket(token, SPACE, ME).seq == 7
    with pytest.raises(BadToken):
        signer.open_ticket(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], SPACE, ME)
    with pytest.raises(BadToken, match="another space"):
        signer.open_ticket(token, SpaceId("zzzzzzzzzzzz"), ME)
    with pytest.raises(Forbidden, match="another browser"):
        signer.open_ticket(token, SPACE, client_hash("client-0002"))
    with pytest.raises(BadToken):
        TicketSigner("t" * 48).open_ticket(token, SPACE, ME)
    for junk in (None, "", 42, "x" * 1000):
        with pytest.raises(BadToken):
            signer.open_ticket(junk, SPACE, ME)
    assert signer.refused == 7  # each refusal above but the other instance's is counted here


def test_an_old_ticket_has_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TicketSigner(SECRET)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # issued an hour ago
    stale = signer.ticket(SPACE, "e1", 1, ME)
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(ExpiredToken, match="expired"):
        signer.open_ticket(stale, SPACE, ME)


def solve(token: str, bits: int) -> int:
    return next(n for n in itertools.count() if leading_zero_bits(pow_digest(token, n)) >= bits)


def test_a_solved_puzzle_gives_a_pass_for_its_network_and_a_wrong_answer_does_not() -> None:
    signer = TicketSigner(SECRET)
    challenge = signer.challenge(SPACE, ME, 8)
    answer = solve(challenge.token, 8)
    solution = signer.open_solution(challenge.token, answer, SPACE, ME, HOME)
    signer.open_solved(solution.solved, SPACE, ME, HOME)
    with pytest.raises(Forbidden, match="another network"):
        signer.open_solved(solution.solved, SPACE, ME, client_hash("198.51.100.9"))
    with pytest.raises(Forbidden, match="another browser"):
        signer.open_solved(solution.solved, SPACE, client_hash("someone-else"), HOME)
    # The same answer verifies again (spending it is the caller's, see SpentAnswers), with the same id.
    assert signer.open_solution(challenge.token, answer, SPACE, ME, HOME).answer_id == solution.answer_id
    assert signer.challenge(SPACE, ME, 8).token != challenge.token
    wrong = next(n for n in itertools.count() if leading_zero_bits(pow_digest(challenge.token, n)) < 8)
    with pytest.raises(Forbidden, match="wrong"):
        signer.open_solution(challenge.token, wrong, SPACE, ME, HOME)
    with pytest.raises(Forbidden, match="another browser"):
        signer.open_solution(challenge.token, answer, SPACE, client_hash("someone-else"), HOME)
    with pytest.raises(BadToken):
        signer.open_solution(challenge.token, None, SPACE, ME, HOME)  # a challenge sent without its counter


def test_a_puzzle_pass_lasts_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TicketSigner(SECRET)
    challenge = signer.challenge(SPACE, ME, 4)
    solved = signer.open_solution(challenge.token, solve(challenge.token, 4), SPACE, ME, HOME).solved
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 4 * 60)
    signer.open_solved(solved, SPACE, ME, HOME)
    monkeypatch.setattr(time, "time", lambda: real() + 6 * 60)
    with pytest.raises(ExpiredToken):
        signer.open_solved(solved, SPACE, ME, HOME)


def test_a_spent_answer_is_refused_until_its_challenge_expires_in_bounded_memory() -> None:
    spent = SpentAnswers(capacity=3)
    assert spent.spend("a", until=120.0, now=0.0)
    assert not spent.spend("a", until=125.0, now=5.0)
    assert not spent.spend("a", until=239.0, now=119.0)
    # Past its challenge's expiry it is forgotten (the signature check refuses it by then).
    assert spent.spend("a", until=240.0, now=120.0)
    assert len(spent) == 1
    for name in ("b", "c", "d"):
        assert spent.spend(name, until=250.0, now=130.0)
    # Never more than the capacity: the oldest went first.
    assert len(spent) == 3
    assert not spent.spend("d", until=250.0, now=131.0)
    assert spent.spend("a", until=251.0, now=131.0)  # the evicted one: what the count warns of
    with pytest.raises(ValueError):
        SpentAnswers(capacity=0)


def test_leading_zero_bits() -> None:
    assert leading_zero_bits(b"\x00\x00\x80") == 16
    assert leading_zero_bits(b"\x00\x01") == 15
    assert leading_zero_bits(b"\xff") == 0
    assert leading_zero_bits(b"\x00\x00") == 16


def test_under_attack_switches_on_with_a_surge_grows_with_it_and_falls_back_after() -> None:
    surge = Surge(rate_per_s=10, factor=5)
    now = 100.0
    for i in range(400):  # 40 arrivals a second for 10 s: below 5 x 10
        surge.note(now + i / 40)
    now += 10
    assert not surge.active(now)
    for i in range(2000):  # 200 a second: 4x the threshold
        surge.note(now + i / 200)
    now += 10
    assert surge.active(now)
    assert surge.difficulty_bits(now) == BASE_DIFFICULTY_BITS + 2
    assert surge.active(now + 30), "stays on for a while after the surge"
    assert not surge.active(now + 75)
    surge.mode = "on"
    assert surge.active(now + 75) and surge.difficulty_bits(now + 75) == BASE_DIFFICULTY_BITS
    surge.mode = "off"
    for i in range(100000):
        surge.note(now + 80 + i / 10000)
    assert not surge.active(now + 89)
    assert Surge(1, 1, mode="on").difficulty_bits(0) <= MAX_DIFFICULTY_BITS
