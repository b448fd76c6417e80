"""The captions settings (each limit checked at load) and `podium doctor`'s captions check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.captions.workers import CaptionConfig
from podium.errors import InvalidInput
from podium.ops.doctor import captions_facts, check_captions
from podium.settings import Settings
from tests.captions.speech import tiny_en


def test_the_defaults_caption_english_with_pocketsphinx_two_speakers_at_once() -> None:
    config = CaptionConfig.from_settings(Settings.load({}))
    assert config == CaptionConfig("pocketsphinx", "", "en", workers=1, max_speakers=2, max_lag_s=8.0)


def test_the_environment_sets_every_captions_setting() -> None:
    env = {
        "PODIUM_CAPTIONS_ENGINE": "whisper",
        "PODIUM_CAPTIONS_MODEL": "/srv/models/whisper-base",
        "PODIUM_CAPTIONS_LANGUAGE": "de",
        "PODIUM_CAPTIONS_WORKERS": "2",
        "PODIUM_CAPTIONS_MAX_SPEAKERS": "3",
        "PODIUM_CAPTIONS_MAX_LAG_S": "5",
    }
    config = CaptionConfig.from_settings(Settings.load(env))
    assert config == CaptionConfig("whisper", "/srv/models/whisper-base", "de", 2, 3, 5.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENGINE", "google", "PODIUM_CAPTIONS_ENGINE must be one of pocketsphinx, whisper, off, not 'google'"),
        ("LANGUAGE", "English", "PODIUM_CAPTIONS_LANGUAGE must be a language code such as en or de"),
        ("WORKERS", "0", "PODIUM_CAPTIONS_WORKERS must be between 1 and 64"),
        ("MAX_SPEAKERS", "0", "PODIUM_CAPTIONS_MAX_SPEAKERS must be between 1 and 1000"),
        ("MAX_LAG_S", "0.5", "PODIUM_CAPTIONS_MAX_LAG_S must be between 1 and 600 seconds"),
        ("MAX_LAG_S", "soon", "PODIUM_CAPTIONS_MAX_LAG_S='soon' is not a valid float"),
    ],
)
def test_a_wrong_captions_setting_is_refused_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Settings.load({f"PODIUM_CAPTIONS_{name}": value})
    assert message in refused.value.message


def test_the_doctor_loads_the_configured_engine_and_says_why_not() -> None:
    default = Settings.load({})
    assert check_captions(default, *captions_facts(default)).status == "ok"
    whisper = Settings.load({"PODIUM_CAPTIONS_ENGINE": "whisper", "PODIUM_CAPTIONS_MODEL": tiny_en()})
    result = check_captions(whisper, *captions_facts(whisper))
    assert (result.status, result.found) == ("ok", f"whisper loads from {tiny_en()}: English only")
    german = Settings.load({"PODIUM_CAPTIONS_ENGINE": "pocketsphinx", "PODIUM_CAPTIONS_LANGUAGE": "de"})
    result = check_captions(german, *captions_facts(german))
    assert result.status == "fail" and "'de'" in result.found and "PODIUM_CAPTIONS_LANGUAGE" in result.fix
    off = Settings.load({"PODIUM_CAPTIONS_ENGINE": "off"})
    assert check_captions(off, *captions_facts(off)).status == "skip"


def test_podium_doctor_reports_a_whisper_model_that_is_not_there(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    missing = tmp_path / "whisper-small"
    environ.update(
        {"PODIUM_ICE_LOOPBACK": "only", "PODIUM_CAPTIONS_ENGINE": "whisper", "PODIUM_CAPTIONS_MODEL": str(missing)}
    )
    done = subprocess.run(
        [sys.executable, "-m", "podium", "doctor", "--data-dir", str(tmp_path / "data"), "--json"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    results = {r["check"]: r for r in json.loads(done.stdout)["results"]}
    captions = results["Captions engine"]
    assert captions["status"] == "fail" and str(missing) in captions["found"] and "no model.bin" in captions["found"]
    assert done.returncode == 1
