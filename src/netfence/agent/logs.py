"""Structured logs on stderr: `text` (one line, key=value fields) or `json` (one object a line).

Code logs an event name with fields: `log.info("synced", extra={"fields": {"result": "update"}})`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

FORMATS = ("text", "json")
_HANDLER = "netfence-agent"
_STANDARD = set(vars(logging.makeLogRecord({})))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "fields", None) or {})
    for key, value in vars(record).items():  # extra={...} given without "fields"
        if key not in _STANDARD and key not in ("fields", "message", "asctime"):
            fields.setdefault(key, value)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname.lower(), record.getMessage()]
        for key, value in _fields(record).items():
            text = str(value)
            parts.append(f"{key}={json.dumps(text) if (' ' in text or '=' in text or not text) else text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname.lower(),
                                "logger": record.name, "msg": record.getMessage()}  # fmt: skip
        for key, value in _fields(record).items():
            data.setdefault(key, value if isinstance(value, (int, float, bool, type(None), list, dict)) else str(value))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, sort_keys=False)


def configure(fmt: str = "text", level: int = logging.INFO, stream: TextIO | None = None) -> logging.Handler:
    """Send netfence's logs (and the client libraries' warnings) to `stream` (stderr) in `fmt`.
    Replaces the handler an earlier call installed; returns the new one."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("netfence").setLevel(level)
    return handler
