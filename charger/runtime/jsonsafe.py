"""JSON at a trust boundary: size and nesting bounded before decoding, strict numbers.

`loads` refuses a document larger than `max_bytes` or nested deeper than `max_depth`
before the decoder sees it, and refuses what is not interoperable JSON: NaN, Infinity,
numbers that overflow a float (1e999) and integers too long to convert (Python refuses
more than 4300 digits). Every failure
is a `JsonError` (a ValueError) whose text says what was wrong; nothing else escapes.
`dumps` never writes NaN or Infinity.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets
_INNERMOST = re.compile(rb"\[\]|\{\}")


class JsonError(ValueError):
    """The document is not acceptable JSON; str() says why, as a phrase that follows
    "is" (callers write e.g. f"payload is {exc}")."""


def nesting_depth(raw: bytes, limit: int) -> int:
    """How deep arrays and objects nest in `raw` (strings ignored), counting no further
    than `limit` + 1. Linear passes in C, so a hostile document costs little."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _BRACKETS)
    depth = 0
    while brackets and depth <= limit:
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:
            break  # unbalanced: the decoder will say where
        depth += 1
    return depth


def _constant(name: str) -> Any:
    raise JsonError(f"not acceptable JSON: {name} is not a number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"not acceptable JSON: the number {text[:20]} is out of range")
    return value


def loads(raw: bytes | str, *, max_bytes: int, max_depth: int) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonError(f"too large: {len(data)} bytes (at most {max_bytes})")
    openers = data.count(b"[") + data.count(b"{")
    if openers > max_depth and nesting_depth(data, max_depth) > max_depth:
        raise JsonError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_constant=_constant, parse_float=_float)
    except JsonError:
        raise
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise JsonError(f"not JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4300 digits
        raise JsonError(f"not acceptable JSON: {exc}") from None


def dumps(value: Any) -> str:
    """Compact JSON; raises ValueError instead of writing NaN or Infinity."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
