"""Cleaning text that people type, before it is stored: one set of rules for titles, names and posts.

NFKC folds look-alike forms (fullwidth letters, ligatures); control and format characters go,
which takes bidi overrides and zero-width characters with them, so a text cannot pretend to be
another or hide something. Text is always shown as text, never as HTML: escaping is the
renderer's job (`textContent` in the pages), so nothing here needs to know about markup.
"""

from __future__ import annotations

import unicodedata

from podium.errors import InvalidInput


def clean_text(raw: object, field: str, max_chars: int, keep_newlines: bool = False) -> str:
    if not isinstance(raw, str):
        raise InvalidInput(f"{field} must be a string")
    text = unicodedata.normalize("NFKC", raw)
    lines = text.splitlines() if keep_newlines else [text]
    cleaned = []
    for line in lines:
        line = "".join(" " if c.isspace() else c for c in line)
        line = "".join(c for c in line if unicodedata.category(c)[0] != "C")
        cleaned.append(" ".join(line.split()))
    text = "\n".join(cleaned).strip("\n") if keep_newlines else cleaned[0]
    while keep_newlines and "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    if not text.strip():
        raise InvalidInput(f"{field} must not be empty")
    if len(text) > max_chars:
        raise InvalidInput(f"{field} is {len(text)} characters long; the limit is {max_chars}")
    return text
