"""The generated message classes and enums of a schema set, in the order of its tables."""

from __future__ import annotations

import enum
import importlib
from functools import cache

from ._generated import _bindings


@cache
def bound(schema: str) -> tuple[tuple[type, ...], tuple[type[enum.StrEnum], ...]]:
    """(class of each type row, enum of each enum row); imports the family modules."""
    _namespace, class_ids, enum_ids = _bindings.SETS[schema]
    classes = tuple(_resolve(*_bindings.CLASSES[c]) for c in class_ids)
    enums = tuple(_resolve(*_bindings.ENUMS[e]) for e in enum_ids)
    return classes, enums


def _resolve(module: str, name: str) -> type:
    found: type = getattr(importlib.import_module(f"{__package__}._generated.{module}"), name)
    return found
