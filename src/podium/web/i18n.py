"""The pages' languages: `locales/<tag>.json`, each with the keys of `en.json` (the source of every
string; a missing key falls back to English). A key ending in `_html` holds trusted markup and is
rendered as is, every other string is escaped; `{name}` is filled from the arguments; `key.one` /
`key.other` are plural forms."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).parent / "locales"
SOURCE = "en"
# A language tag as Accept-Language and ?lang= carry it: "de", "de-AT", "en-US" ("*" is skipped).
_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_FIELD = re.compile(r"\{(\w+)\}")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise ValueError(f"{name}: a translation is a string or a group of them")
    return flat


@dataclass(frozen=True)
class Language:
    """One language's strings, English filling what it lacks."""

    tag: str
    name: str  # the language's own name for itself ("Deutsch")
    strings: dict[str, str]

    def text(self, key: str, **fields: object) -> str:
        template = self.strings.get(key)
        if template is None:
            raise KeyError(f"no string {key!r} in {SOURCE}.json")
        return _FIELD.sub(lambda m: str(fields.get(m.group(1), m.group(0))), template)

    def plural(self, key: str, count: int, **fields: object) -> str:
        # The languages shipped so far (en, de) have two forms; CLDR's rule for both is n == 1.
        form = "one" if count == 1 else "other"
        name = f"{key}.{form}" if f"{key}.{form}" in self.strings else f"{key}.other"
        return self.text(name, count=count, **fields)


@cache
def languages() -> dict[str, Language]:
    """Every language in `locales/`, each complete (English where it has no string of its own)."""
    source = _flatten(json.loads((LOCALES / f"{SOURCE}.json").read_text(encoding="utf-8")))
    found: dict[str, Language] = {}
    for path in sorted(LOCALES.glob("*.json")):
        own = _flatten(json.loads(path.read_text(encoding="utf-8")))
        strings = {**source, **{k: v for k, v in own.items() if k in source}}
        found[path.stem] = Language(path.stem, strings.get("language.name", path.stem), strings)
    return found


def first_language(accept_language: str | None) -> str:
    """The primary subtag of the browser's first language ("de" for "de-AT,de;q=0.9,en;q=0.8"): only
    the first, which the edge's page cache keys on (deploy/nginx); browsers list the user's own first."""
    first = (accept_language or "").split(",", 1)[0].split(";", 1)[0].strip()
    return first.split("-", 1)[0].lower() if _TAG.match(first) else ""


def choose(accept_language: str | None, asked: str | None = None) -> Language:
    """`?lang=` if it names a language here, else the browser's first language if we have it, else English."""
    known = languages()
    for tag in ((asked or "").lower(), first_language(accept_language)):
        if tag in known:
            return known[tag]
    return known[SOURCE]
