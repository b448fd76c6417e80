"""Tickets, passes and puzzles: refused on their signature alone, and bound to one client."""

from __future__ import annotations

import itertools
import time

import pytest

from podium.admission.joins import BASE_DIFFICULTY_BITS, MAX_DIFFICULTY_BITS, Surge
from podium.admission.tickets import (
    BadToken,
    ExpiredToken,
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


def test_a_solved_puzzle_gives_a_reusable_pass_and_a_wrong_answer_does_not() -> None:
    signer = TicketSigner(SECRET)
    challenge = signer.challenge(SPACE, ME, 8)
    answer = next(n for n in itertools.count() if leading_zero_bits(pow_digest(challenge.token, n)) >= 8)
    solved = signer.open_solution(challenge.token, answer, SPACE, ME)
    signer.open_solved(solved, SPACE, ME)
    wrong = next(n for n in itertools.count() if leading_zero_bits(pow_digest(challenge.token, n)) < 8)
    with pytest.raises(Forbidden, match="wrong"):
        signer.open_solution(challenge.token, wrong, SPACE, ME)
    with pytest.raises(Forbidden, match="another browser"):
        signer.open_solution(challenge.token, answer, SPACE, client_hash("someone-else"))


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
