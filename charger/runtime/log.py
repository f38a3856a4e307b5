"""Logging set-up: one line per event, `key=value` fields that tools can grep and parse.

Call sites use ``log.info("contactor_opened", extra=kv(evse="DE*1", reason="C->B"))`` or the
`event` helper; the formatter renders ``ts level logger event key=value ...``.

No secret reaches the log at any level: the formatter, which every line passes, blanks
HTTP credentials (the WebSocket library logs its request headers at debug level) and
the value of any field whose name says it is a secret.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

_FIELDS = "kv"
REDACTED = "<redacted>"
_CREDENTIALS = re.compile(
    r"((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer|digest)?\s*)[^\s'\",]+",
    re.IGNORECASE,
)
_SECRET_FIELDS = ("password", "secret", "token_value", "private_key", "nmk")


def redact(text: str) -> str:
    return _CREDENTIALS.sub(rf"\1{REDACTED}", text)


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
        parts.extend(
            f"{key}={REDACTED if any(s in key.lower() for s in _SECRET_FIELDS) else _quote(value)}"
            for key, value in fields.items()
        )
        if record.exc_info:
            parts.append("exc=" + _quote(self.formatException(record.exc_info)))
        return redact(" ".join(parts))


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at warning unless we debug.
    for noisy in ("asyncio",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
