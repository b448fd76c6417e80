"""Structured logs (`PODIUM_LOG_FORMAT=json`): one JSON object per line, for a log collector.

Every line has `time` (ISO 8601, UTC), `level`, `logger` and `message`; `exception` (the
traceback) when there is one, and the fields a call passed as `extra=` (values JSON cannot hold
are written as their `str`). An extra field named like one of these keeps its value under
`extra.<name>` instead of replacing it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# What every LogRecord has by itself: anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                entry["extra." + name if name in entry else name] = value
        # One line whatever the message holds: json.dumps escapes newlines inside strings.
        return json.dumps(entry, default=str, ensure_ascii=False)
