"""The pages' languages: chosen by the browser, complete, and every string a page uses exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from podium.web import i18n
from podium.web.pages import STATIC, TEMPLATES

# t("key") / tn("key", ...) in templates and scripts; a key named by a variable is not checked here.
USED = re.compile(r"""\btn?\(\s*["']([a-z0-9_.]+)["']""")
FIELDS = re.compile(r"\{(\w+)\}")


def used_keys() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in [*TEMPLATES.glob("*.html"), *STATIC.glob("*.js")]:
        if path.name == "i18n.js":  # its comment shows the calls
            continue
        for key in USED.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, path.name)
    return found


def test_every_string_a_page_uses_is_in_english() -> None:
    english = i18n.languages()["en"].strings
    missing = {key: where for key, where in used_keys().items() if key not in english and f"{key}.other" not in english}
    assert not missing, f"strings used but not in en.json: {missing}"


@pytest.mark.parametrize("path", sorted(i18n.LOCALES.glob("*.json")), ids=lambda p: p.name)
def test_each_language_file_has_exactly_the_english_keys_with_the_same_fields(path: Path) -> None:
    english = i18n.languages()["en"].strings
    own = i18n._flatten(json.loads(path.read_text(encoding="utf-8")))
    assert sorted(set(english) - set(own)) == [], f"{path.name} lacks these strings"
    assert sorted(set(own) - set(english)) == [], f"{path.name} has strings English does not"
    for key, text in own.items():
        assert set(FIELDS.findall(text)) == set(FIELDS.findall(english[key])), f"{path.name}: {key}"


@pytest.mark.parametrize(
    ("header", "asked", "chosen"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", None, "de"),
        ("de", None, "de"),
        ("DE-at", None, "de"),
        ("en-US,en;q=0.9,de;q=0.8", None, "en"),
        # Only the first language counts (the edge's page cache keys on it): French first is English.
        ("fr-FR,de;q=0.9", None, "en"),
        ("", None, "en"),
        (None, None, "en"),
        ("*", None, "en"),
        ("garbage;;;,,", None, "en"),
        ("en-US", "de", "de"),
        ("de", "xx", "de"),
        ("de", "../../etc", "de"),
    ],
)
def test_the_language_is_the_asked_one_else_the_browsers_first(
    header: str | None, asked: str | None, chosen: str
) -> None:
    assert i18n.choose(header, asked).tag == chosen


def test_plural_forms_and_fields() -> None:
    german = i18n.languages()["de"]
    assert german.plural("home.listening", 1) == "1 hört zu"
    assert german.plural("home.listening", 3) == "3 hören zu"
    assert german.text("home.create_failed", message="x") == "Der Space konnte nicht angelegt werden: x"


async def test_a_page_comes_in_the_browsers_language_with_its_strings_for_scripts(client: httpx.AsyncClient) -> None:
    german = await client.get("/", headers={"Accept-Language": "de-CH,de;q=0.9"})
    assert german.status_code == 200
    assert german.headers["content-language"] == "de"
    assert "Accept-Language" in [name.strip() for name in german.headers["vary"].split(",")]
    assert '<html lang="de">' in german.text and "Einen Live-Space starten" in german.text
    block = german.text.split('id="podium-i18n">', 1)[1].split("</script>", 1)[0]
    strings = json.loads(block)
    assert strings["lang"] == "de" and strings["strings"]["home.badge_soon"] == "bald"
    # Markup from the locale file is kept; nothing in the block can close the script element.
    assert '<a href="/feed.xml">Podcast-Feed</a>' in german.text and "</" not in block
    english = await client.get("/", headers={"Accept-Language": "en-GB"})
    assert english.headers["content-language"] == "en" and "Start a live space" in english.text
