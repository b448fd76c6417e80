"""Structured logs: one JSON object per line, and a clear refusal of an unknown format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.errors import InvalidInput
from podium.ops.cli import main
from podium.ops.logs import JsonFormatter
from podium.settings import Settings
from tests.conftest import Server, free_port


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("podium.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_its_fields(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.warning("space %s: segment %d was cut short\nby a crash", "abc123", 7, extra={"space": "abc123", "msn": 7})
    logger.info("ready", extra={"started": datetime(2026, 12, 1, 19, tzinfo=UTC), "level": "shadowed"})
    (warning, info) = lines(out)
    assert warning["level"] == "WARNING" and warning["logger"] == "podium.test-logs"
    assert warning["message"] == "space abc123: segment 7 was cut short\nby a crash"
    assert warning["space"] == "abc123" and warning["msn"] == 7
    assert "exception" not in warning
    when = datetime.fromisoformat(warning["time"])
    assert when.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - when) < timedelta(minutes=1)
    # Values JSON cannot hold are written as text; an extra never replaces a standard field.
    assert info["started"] == "2026-12-01 19:00:00+00:00"
    assert info["level"] == "INFO" and info["extra.level"] == "shadowed"


def test_an_exception_keeps_its_traceback_in_the_line(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    try:
        raise ValueError("the encoder gave up")
    except ValueError:
        logger.exception("stage of %s stopped", "abc123")
    (entry,) = lines(out)
    assert entry["level"] == "ERROR" and entry["message"] == "stage of abc123 stopped"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: the encoder gave up")


def test_an_unknown_log_format_is_refused_clearly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"PODIUM_LOG_FORMAT must be one of text, json, not 'bogus'"):
        Settings.load({"PODIUM_LOG_FORMAT": "bogus"})
    assert Settings.load({"PODIUM_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PODIUM_LOG_FORMAT", "bogus")
        assert main(["serve", "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == "podium: PODIUM_LOG_FORMAT must be one of text, json, not 'bogus'\n"


def test_podium_serve_logs_json_lines_uvicorns_included(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port(), tmp_path / "podium.log", env={"PODIUM_LOG_FORMAT": "json"})
    server.start()
    server.stop()
    text = server.log_path.read_text().splitlines()
    # The two banner lines are printed to stdout for people; everything logged is JSON.
    banner = [line for line in text if not line.startswith("{")]
    assert [line.split()[0] for line in banner] == ["Podium", "data:"]
    entries = [json.loads(line) for line in text if line.startswith("{")]
    assert {"uvicorn.error"} <= {e["logger"] for e in entries}
    assert any("Application startup complete" in e["message"] for e in entries)
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
