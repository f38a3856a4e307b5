"""The C extension as a Backend: binds the generated classes to its tables on first use."""

from __future__ import annotations

import importlib

from . import _bindings, _exi
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
            _namespace, class_ids, enum_ids = _bindings.SETS[schema]
            classes = tuple(_resolve(*_bindings.CLASSES[c]) for c in class_ids)
            enums = tuple(_resolve(*_bindings.ENUMS[e]) for e in enum_ids)
            _exi.bind(index, classes, enums)
            self._bound.add(schema)
        return index

    def encode(self, schema: str, message: object, element: str | None, fragment: bool) -> bytes:
        return _exi.encode(self._index(schema), message, element, fragment)

    def decode(self, schema: str, data: bytes, fragment: bool) -> tuple[str, object]:
        return _exi.decode(self._index(schema), data, fragment)


def _resolve(module: str, name: str) -> type:
    cls: type = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return cls
