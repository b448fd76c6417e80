from datetime import UTC, datetime, timedelta

import pytest

from podium.domain import space as rules
from podium.domain.space import SpaceState
from podium.errors import Conflict, InvalidInput
from podium.ids import SpaceId

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def test_life_of_a_space() -> None:
    space = rules.new_space(SpaceId("abcdefabcdef"), "Interview", None, NOW)
    assert space.state is SpaceState.SCHEDULED
    live = rules.go_live(space, NOW + timedelta(minutes=1))
    assert live.state is SpaceState.LIVE and live.started_at == NOW + timedelta(minutes=1)
    assert rules.go_live(live, NOW + timedelta(minutes=5)) is live  # a reconnect keeps the start
    ended = rules.end(live, NOW + timedelta(minutes=30))
    assert ended.state is SpaceState.ENDED and ended.ended_at == NOW + timedelta(minutes=30)
    assert rules.end(ended, NOW + timedelta(hours=1)) is ended
    with pytest.raises(Conflict):
        rules.go_live(ended, NOW)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  The   20:00  interview ", "The 20:00 interview"),
        ("\uff26\uff55\uff4c\uff4c", "Full"),  # fullwidth letters fold to ASCII
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("zero\u200bwidth", "zerowidth"),
        ("tab\tand\nnewline", "tab and newline"),
    ],
)
def test_titles_are_cleaned(raw: str, expected: str) -> None:
    assert rules.clean_title(raw, 200) == expected


@pytest.mark.parametrize(
    ("raw", "reason"), [("", "empty"), ("\u200b ", "empty"), (5, "string"), ("x" * 201, "limit is 200")]
)
def test_bad_titles_are_refused(raw: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        rules.clean_title(raw, 200)


def test_start_times() -> None:
    assert rules.parse_starts_at(None, NOW) is None
    assert rules.parse_starts_at("2026-12-01T20:00:00Z", NOW) == datetime(2026, 12, 1, 20, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="time zone"):
        rules.parse_starts_at("2026-12-01T20:00:00", NOW)
    with pytest.raises(InvalidInput, match="ISO 8601"):
        rules.parse_starts_at("tomorrow", NOW)
    with pytest.raises(InvalidInput, match="a year ahead"):
        rules.parse_starts_at("2030-01-01T00:00:00Z", NOW)


def test_peak_only_grows() -> None:
    space = rules.new_space(SpaceId("abcdefabcdef"), "x", None, NOW)
    assert rules.with_peak(space, 5).peak_listeners == 5
    assert rules.with_peak(rules.with_peak(space, 5), 3).peak_listeners == 5
