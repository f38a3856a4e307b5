"""Converter between message objects and the "XML names as JSON keys" form.

That form is what the `iso15118` package's Java codec reads and prints, and what the
shared test vectors use: `{"V2G_Message": {"Header": {"SessionID": "5E27..."}, ...}}`.
Keys are XSD local names; attributes sit beside child elements; simple content with
attributes is `{"value": ..., "Id": ...}`; repeated elements are lists; hexBinary is
upper-case hex, base64Binary is padded base64; enumerations are their literal.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from typing import Any

from . import _pycodec
from .errors import ExiError

JsonValue = Any


@dataclass
class _FieldInfo:
    py_name: str
    xsd_name: str
    flags: int
    value: int = -1  # value index of attributes, text and simple elements
    # child element name -> (is_simple, type or value index)
    elements: dict[str, tuple[bool, int]] = field(default_factory=dict)
    # Python class -> child element name (substitution groups)
    names: dict[type, str] = field(default_factory=dict)


class _Tables:
    """Per-type field descriptions derived once from one schema set's grammar tables."""

    def __init__(self, schema: str) -> None:
        self.g = _pycodec.grammar(schema)
        g = self.g
        starts = sorted((t[1], index) for index, t in enumerate(g.types))
        ends = {
            index: (starts[i + 1][0] if i + 1 < len(starts) else len(g.states))
            for i, (_, index) in enumerate(starts)
        }
        self.fields: list[list[_FieldInfo]] = []
        for index, (_, first_state, first_field, n_fields, _) in enumerate(g.types):
            infos = [
                _FieldInfo(g.strings[g.fields[f][0]], g.strings[g.fields[f][1]], g.fields[f][2])
                for f in range(first_field, first_field + n_fields)
            ]
            for state in range(first_state, ends[index]):
                first, count, _, _ = g.states[state]
                for kind, _guard, fld, _target, arg, qname in g.prods[first : first + count]:
                    if fld == 0xFFFF:
                        continue
                    info = infos[fld - first_field]
                    if kind in (_pycodec.AT, _pycodec.CH, _pycodec.CH_UNTYPED):
                        info.value = arg
                    elif kind in (_pycodec.SE, _pycodec.SE_SIMPLE):
                        name = g.strings[qname]
                        info.elements[name] = (kind == _pycodec.SE_SIMPLE, arg)
                        if kind == _pycodec.SE:
                            info.names.setdefault(g.classes[arg], name)
            self.fields.append(infos)

    # -- objects -> JSON -----------------------------------------------------------------
    def value_to_json(self, vindex: int, value: object) -> JsonValue:
        kind = self.g.values[vindex][0]
        if kind == _pycodec.V_HEX and isinstance(value, bytes | bytearray):
            return bytes(value).hex().upper()
        if kind == _pycodec.V_BASE64 and isinstance(value, bytes | bytearray):
            return base64.b64encode(value).decode()
        if isinstance(value, enum.Enum):
            return value.value
        return value

    def object_to_json(self, type_index: int, obj: object) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        for info in self.fields[type_index]:
            value = getattr(obj, info.py_name)
            if value is None or (info.flags & _pycodec.F_LIST and not value):
                continue
            if not info.elements:
                result[info.xsd_name] = self.value_to_json(info.value, value)
                continue
            items = value if info.flags & _pycodec.F_LIST else [value]
            for item in items:
                name = info.names.get(type(item)) or next(iter(info.elements))
                is_simple, arg = info.elements[name]
                converted = (
                    self.value_to_json(arg, item) if is_simple else self.object_to_json(arg, item)
                )
                if info.flags & _pycodec.F_LIST:
                    result.setdefault(name, []).append(converted)
                else:
                    result[name] = converted
        return result

    # -- JSON -> objects -----------------------------------------------------------------
    def value_from_json(self, vindex: int, value: JsonValue, where: str) -> object:
        kind, _w, _lo, _hi, _min, _max, enum_index = self.g.values[vindex]
        try:
            if kind == _pycodec.V_HEX:
                return bytes.fromhex(value)
            if kind == _pycodec.V_BASE64:
                return base64.b64decode(value, validate=True)
            if kind == _pycodec.V_ENUM:
                return self.g.enums[enum_index](value)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ExiError(f"{where}: {value!r} is not valid here ({exc})") from None
        return value

    def object_from_json(self, type_index: int, data: JsonValue, where: str) -> object:
        if not isinstance(data, dict):
            raise ExiError(f"{where}: expected an object, got {type(data).__name__}")
        kwargs: dict[str, object] = {}
        known: set[str] = set()
        for info in self.fields[type_index]:
            if not info.elements:
                known.add(info.xsd_name)
                if info.xsd_name in data:
                    kwargs[info.py_name] = self.value_from_json(
                        info.value, data[info.xsd_name], f"{where}.{info.xsd_name}"
                    )
                continue
            items: list[object] = []
            for name, (is_simple, arg) in info.elements.items():
                known.add(name)
                if name not in data:
                    continue
                raw = data[name]
                raws = raw if info.flags & _pycodec.F_LIST and isinstance(raw, list) else [raw]
                for item in raws:
                    path = f"{where}.{name}"
                    items.append(
                        self.value_from_json(arg, item, path)
                        if is_simple
                        else self.object_from_json(arg, item, path)
                    )
            if info.flags & _pycodec.F_LIST:
                kwargs[info.py_name] = items
            elif items:
                kwargs[info.py_name] = items[0]
        unknown = set(data) - known
        if unknown:
            raise ExiError(f"{where}: unknown keys {sorted(unknown)}")
        cls = self.g.classes[type_index]
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ExiError(f"{where}: {exc}") from None


_TABLES: dict[str, _Tables] = {}


def _tables(schema: str) -> _Tables:
    if schema not in _TABLES:
        _TABLES[schema] = _Tables(schema)
    return _TABLES[schema]


def to_json(
    schema: str, element: str, value: object, *, fragment: bool = False
) -> dict[str, JsonValue]:
    """`{element: ...}` for a decoded (or hand-built) root element of `schema`."""
    tables = _tables(schema)
    g = tables.g
    for qname, is_simple, arg in g.fragments if fragment else g.globals:
        if g.strings[qname] == element:
            if is_simple:
                return {element: tables.value_to_json(arg, value)}
            return {element: tables.object_to_json(arg, value)}
    raise ExiError(f"{schema}: {element} is not a root element")


def from_json(
    schema: str, document: dict[str, JsonValue], *, fragment: bool = False
) -> tuple[str, object]:
    """(element name, message object) for a one-key JSON document."""
    if not isinstance(document, dict) or len(document) != 1:
        raise ExiError("a JSON message has exactly one key: the root element name")
    ((element, body),) = document.items()
    tables = _tables(schema)
    g = tables.g
    for qname, is_simple, arg in g.fragments if fragment else g.globals:
        if g.strings[qname] == element:
            if is_simple:
                return element, tables.value_from_json(arg, body, element)
            return element, tables.object_from_json(arg, body, element)
    raise ExiError(f"{schema}: {element} is not a root element")
