"""Logging set-up: one line per event, `key=value` fields that tools can grep and parse.

Call sites use ``log.info("contactor_opened", extra=kv(evse="DE*1", reason="C->B"))`` or the
`event` helper; the formatter renders ``ts level logger event key=value ...``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_FIELDS = "kv"


def kv(**fields: Any) -> dict[str, Any]:
    return {_FIELDS: fields}


def event(logger: logging.Logger, level: int, what: str, /, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, what, extra={_FIELDS: fields})


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"{stamp}.{int(record.msecs):03d}Z",
            record.levelname.lower(),
            record.name,
            _quote(record.getMessage()),
        ]
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        parts.extend(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            parts.append("exc=" + _quote(self.formatException(record.exc_info)))
        return " ".join(parts)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at warning unless we debug.
    for noisy in ("asyncio",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
