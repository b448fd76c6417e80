"""LL-HLS names and directives: one spelling each, ASCII digits only, bounded; a bad directive is a 400."""

from __future__ import annotations

import pytest

from podium.delivery.hls import parse_directive, parse_part_name, parse_segment_name
from podium.errors import InvalidInput


@pytest.mark.parametrize(
    ("name", "parsed"), [("p0-0.m4s", (0, 0)), ("p12-3.m4s", (12, 3)), ("p999999999-999.m4s", (999999999, 999))]
)
def test_a_part_name_in_its_one_spelling(name: str, parsed: tuple[int, int]) -> None:
    assert parse_part_name(name) == parsed


@pytest.mark.parametrize(
    "name",
    [
        "p012-3.m4s",  # a leading zero: the same part under another URL, a second copy in every cache
        "p12-03.m4s",
        "p\u0661\u0662-3.m4s",  # Arabic-Indic digits, which \\d and int() both take
        "p\u00b2-3.m4s",  # a superscript two
        "p12-3.m4s\n",  # `$` would match before a trailing newline
        "p1234567890-3.m4s",
        "p12-3.m4",
        "p-1-3.m4s",
    ],
)
def test_any_other_spelling_of_a_part_is_no_part(name: str) -> None:
    assert parse_part_name(name) is None


def test_a_segment_name_in_its_one_spelling() -> None:
    assert parse_segment_name("s0.m4s") == 0
    assert parse_segment_name("s42.m4s") == 42
    for alias in ("s00000.m4s", "s042.m4s", "s\u0664\u0662.m4s", "s42.m4s\n", "s+42.m4s", "s 42.m4s", "s.m4s"):
        assert parse_segment_name(alias) is None, alias


def test_a_directive_is_a_bounded_ascii_number_or_a_clear_400() -> None:
    assert parse_directive("_HLS_msn", None) is None
    assert parse_directive("_HLS_msn", "0") == 0
    assert parse_directive("_HLS_msn", "999999999") == 999999999
    for bad in ("\u00b2", "\u0661", "9" * 5000, "1000000000", "-1", "+1", "01", " 1", "1e3", ""):
        with pytest.raises(InvalidInput, match="_HLS_part must be a whole number in the digits 0-9"):
            parse_directive("_HLS_part", bad)
