import pytest

from podium.errors import InvalidInput
from podium.text import clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # kept as text; shown as text
        ('<img src=x onerror="alert(1)">', '<img src=x onerror="alert(1)">'),
        ("abc\u202edcba\u202c", "abcdcba"),  # right-to-left override and pop: gone
        ("a\u200b\u200c\u200d\u2060b\ufeff", "ab"),  # zero-width characters: gone
        ("bell\x07 and \x1b[31mred", "bell and [31mred"),  # control characters: gone
        ("\uff21\uff22\uff23", "ABC"),  # NFKC
    ],
)
def test_invisible_and_control_characters_are_removed(raw: str, expected: str) -> None:
    assert clean_text(raw, "text", 500) == expected


def test_newlines_are_kept_only_where_asked_and_runs_are_collapsed() -> None:
    assert clean_text("one\ntwo", "text", 100) == "one two"
    assert clean_text("one\r\n\n\n\n\ntwo  \n", "text", 100, keep_newlines=True) == "one\n\ntwo"


@pytest.mark.parametrize(
    ("raw", "reason"), [("", "empty"), ("\u200b\u202e", "empty"), (None, "string"), ("x" * 11, "limit is 10")]
)
def test_refusals_say_why(raw: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        clean_text(raw, "text", 10)
