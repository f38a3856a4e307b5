"""The C extension as a Backend: binds the generated classes to its tables on first use."""

from __future__ import annotations

from . import _classes, _exi
from .errors import ExiError

_exi.set_error(ExiError)
_INDEX = {name: index for index, name in enumerate(_exi.grammar_names())}


class CBackend:
    name = "c"

    def __init__(self) -> None:
        self._bound: set[str] = set()

    def _index(self, schema: str) -> int:
        index = _INDEX.get(schema)
        if index is None:
            raise ExiError(f"unknown schema {schema!r}; known: {', '.join(_INDEX)}")
        if schema not in self._bound:
            _exi.bind(index, *_classes.bound(schema))
            self._bound.add(schema)
        return index

    def encode(self, schema: str, message: object, element: str | None, fragment: bool) -> bytes:
        return _exi.encode(self._index(schema), message, element, fragment)

    def decode(self, schema: str, data: bytes, fragment: bool) -> tuple[str, object]:
        return _exi.decode(self._index(schema), data, fragment)
