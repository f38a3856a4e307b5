"""Pure-Python EXI backend: the same grammar tables as the C extension, read by plain code.

It exists as a differential oracle for the C backend in tests and as a fallback where
the extension is not built; it is 40-270 times slower (bench/exi.py).
"""

from __future__ import annotations

import enum

from . import _classes
from ._generated import _grammar
from ._generated._bindings import MAX_STREAM
from .errors import ExiError

AT, SE, SE_SIMPLE, SE_ANY, EE, CH, CH_UNTYPED = range(7)
V_BOOL, V_NBIT, V_UINT, V_INT, V_STRING, V_ENUM, V_HEX, V_BASE64 = range(8)
F_LIST, F_OPTIONAL = 1, 2
ALWAYS, WHILE_BELOW_MAX, ONCE_MIN_REACHED = range(3)
NO_STATE = 0xFFFFFFFF
NO_FIELD = 0xFFFF
COUNT_UNBOUNDED = 0xFFFF
HEADER = 0x80  # distinguishing bits 10, no options, EXI version 1
MAX_DEPTH = 64


def _bits_for(count: int) -> int:
    return (count - 1).bit_length() if count > 1 else 0


class Grammar:
    """One schema set's tables with the Python classes bound to them."""

    def __init__(self, name: str) -> None:
        raw = _grammar.SETS[name]
        self.name = name
        (
            self.namespace,
            self.strings,
            self.types,
            self.fields,
            self.states,
            self.prods,
            self.values,
            self.globals,
            self.fragments,
            _class_ids,
            _enum_ids,
        ) = raw
        classes, enums = _classes.bound(name)
        self.classes: list[type] = list(classes)
        self.enums: list[type[enum.StrEnum]] = list(enums)
        self.enum_members = [tuple(e) for e in self.enums]

    def type_name(self, type_index: int) -> str:
        return str(self.strings[self.types[type_index][4]])


class _Writer:
    def __init__(self) -> None:
        self.acc = 0
        self.length = 0

    def bits(self, value: int, width: int) -> None:
        self.acc = (self.acc << width) | value
        self.length += width

    def raw(self, data: bytes) -> None:
        """Whole bytes in one shift (a byte at a time would copy a long value over and over)."""
        self.acc = (self.acc << (8 * len(data))) | int.from_bytes(data, "big")
        self.length += 8 * len(data)

    def uint(self, value: int) -> None:
        while True:
            group = value & 0x7F
            value >>= 7
            self.bits(group | (0x80 if value else 0), 8)
            if not value:
                return

    def getvalue(self) -> bytes:
        pad = -self.length % 8
        return (self.acc << pad).to_bytes((self.length + pad) // 8, "big")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.length = len(data) * 8
        self.pos = 0

    def bits(self, width: int) -> int:
        if self.pos + width > self.length:
            raise ExiError(f"stream ends inside a {width}-bit field", self.pos)
        self.pos += width
        return (self.value >> (self.length - self.pos)) & ((1 << width) - 1)

    def uint(self) -> int:
        start, result, shift = self.pos, 0, 0
        while True:
            group = self.bits(8)
            if shift == 63 and group & 0x7F > 1:
                raise ExiError("unsigned integer larger than 64 bits", start)
            result |= (group & 0x7F) << shift
            if not group & 0x80:
                return result
            if shift >= 63:
                raise ExiError("unsigned integer longer than 10 bytes", start)
            shift += 7


def _enabled(grammar: Grammar, state: int, count: int) -> list[int]:
    first, n, cmin, cmax = grammar.states[state]
    prods = range(first, first + n)
    if cmax == 0:
        return list(prods)
    result = []
    for p in prods:
        guard = grammar.prods[p][1]
        if guard == WHILE_BELOW_MAX and cmax != COUNT_UNBOUNDED and count >= cmax:
            continue
        if guard == ONCE_MIN_REACHED and count < cmin:
            continue
        result.append(p)
    return result


def _next_count(grammar: Grammar, state: int, target: int, count: int) -> int:
    """Repetitions of the counted element so far, after moving from `state` to `target`."""
    if target == NO_STATE or grammar.states[target][3] == 0:
        return 0
    return count + 1 if target == state else 1


class Encoder:
    def __init__(self, grammar: Grammar) -> None:
        self.g = grammar
        self.out = _Writer()

    def value(self, vindex: int, value: object, where: str) -> None:
        kind, width, lo, hi, min_len, max_len, enum_index = self.g.values[vindex]
        out = self.out
        if kind == V_BOOL:
            if not isinstance(value, bool):
                raise ExiError(f"{where}: expected bool, got {type(value).__name__}")
            out.bits(int(value), 1)
        elif kind in (V_NBIT, V_UINT, V_INT):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ExiError(f"{where}: expected int, got {type(value).__name__}")
            if not lo <= value <= hi:
                raise ExiError(f"{where}: {value} is outside {lo}..{hi}")
            if kind == V_NBIT:
                out.bits(value - lo, width)
            elif kind == V_UINT:
                out.uint(value)
            else:
                out.bits(1 if value < 0 else 0, 1)
                out.uint(-value - 1 if value < 0 else value)
        elif kind == V_ENUM:
            members = self.g.enum_members[enum_index]
            if value not in members:
                name = self.g.enums[enum_index].__name__
                raise ExiError(f"{where}: {value!r} is not a {name}")
            out.bits(members.index(value), width)
        elif kind == V_STRING:
            if not isinstance(value, str):
                raise ExiError(f"{where}: expected str, got {type(value).__name__}")
            self._check_length(len(value), min_len, max_len, where, "characters")
            out.uint(len(value) + 2)
            for char in value:
                out.uint(ord(char))
        else:
            if not isinstance(value, bytes | bytearray):
                raise ExiError(f"{where}: expected bytes, got {type(value).__name__}")
            self._check_length(len(value), min_len, max_len, where, "bytes")
            out.uint(len(value))
            out.raw(bytes(value))

    @staticmethod
    def _check_length(length: int, low: int, high: int, where: str, unit: str) -> None:
        if length < low or (high and length > high):
            limit = f"{low}..{high}" if high else f"at least {low}"
            raise ExiError(f"{where}: {length} {unit}, allowed {limit}")

    def simple_element(self, vindex: int, value: object, where: str) -> None:
        self.out.bits(0, 1)  # CH, the only first-level event of a simple type's start
        self.value(vindex, value, where)
        self.out.bits(0, 1)  # EE

    def complex(self, type_index: int, obj: object, where: str, depth: int) -> None:
        g = self.g
        if depth > MAX_DEPTH:
            raise ExiError(f"{where}: nested deeper than {MAX_DEPTH}")
        cls = g.classes[type_index]
        if type(obj) is not cls:
            raise ExiError(f"{where}: expected {cls.__name__}, got {type(obj).__name__}")
        _, state, first_field, n_fields, _ = g.types[type_index]
        count = 0
        for field_index in range(first_field, first_field + n_fields):
            py_name = g.strings[g.fields[field_index][0]]
            value = getattr(obj, py_name)
            flags = g.fields[field_index][2]
            if flags & F_LIST:
                if not isinstance(value, list):
                    raise ExiError(
                        f"{where}.{py_name}: expected a list, got {type(value).__name__}"
                    )
                items = value
            else:
                items = [] if value is None else [value]
            for item in items:
                state, count = self.event(
                    state, count, field_index, item, f"{where}.{py_name}", depth
                )
        self.event(state, count, -1, None, where, depth)

    def event(
        self, state: int, count: int, field_index: int, item: object, where: str, depth: int
    ) -> tuple[int, int]:
        g = self.g
        enabled = _enabled(g, state, count)
        for code, p in enumerate(enabled):
            kind, _guard, field, target, arg, _qname = g.prods[p]
            if field_index < 0:
                if kind != EE:
                    continue
            elif field != field_index or (kind == SE and type(item) is not g.classes[arg]):
                continue
            self.out.bits(code, _bits_for(len(enabled) + 1))
            if kind in (AT, CH, CH_UNTYPED):
                self.value(arg, item, where)
            elif kind == SE_SIMPLE:
                self.simple_element(arg, item, where)
            elif kind == SE:
                self.complex(arg, item, where, depth + 1)
            return target, _next_count(g, state, target, count)
        expected = ", ".join(_describe(g, p) for p in enabled)
        if field_index < 0:
            raise ExiError(f"{where}: a required field is missing; expected {expected}")
        what = type(item).__name__
        raise ExiError(f"{where}: {what} cannot appear here; expected {expected}")


def _describe(g: Grammar, prod_index: int) -> str:
    kind, _guard, field, _target, _arg, _qname = g.prods[prod_index]
    if kind == EE:
        return "end of element"
    if field == 0xFFFF:
        return "undeclared content"
    return str(g.strings[g.fields[field][0]])


class Decoder:
    def __init__(self, grammar: Grammar, data: bytes) -> None:
        self.g = grammar
        self.inp = _Reader(data)

    def value(self, vindex: int) -> object:
        kind, width, lo, hi, min_len, max_len, enum_index = self.g.values[vindex]
        inp = self.inp
        start = inp.pos
        if kind == V_BOOL:
            return bool(inp.bits(1))
        if kind == V_NBIT:
            value = lo + inp.bits(width)
            if value > hi:
                raise ExiError(f"integer {value} above {hi}", start)
        elif kind == V_UINT:
            value = inp.uint()
        elif kind == V_INT:
            negative = inp.bits(1)
            magnitude = inp.uint()
            if magnitude >= 2**63:
                raise ExiError("integer magnitude beyond 64 bits", start)
            value = -magnitude - 1 if negative else magnitude
        elif kind == V_ENUM:
            index = inp.bits(width)
            members = self.g.enum_members[enum_index]
            if index >= len(members):
                raise ExiError(f"enumeration index {index} of {len(members)}", start)
            return members[index]
        elif kind == V_STRING:
            length = inp.uint()
            if length < 2:
                raise ExiError(
                    "string table reference; ISO 15118 streams carry every string literally", start
                )
            length -= 2
            self._check_length(length, min_len, max_len, start, "string", "characters")
            if length > (inp.length - inp.pos) // 8:
                raise ExiError(f"string of {length} characters runs past the end", start)
            chars = []
            for _ in range(length):
                at = inp.pos
                code_point = inp.uint()
                if code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
                    raise ExiError(f"invalid character U+{code_point:X}", at)
                chars.append(chr(code_point))
            return "".join(chars)
        else:
            length = inp.uint()
            self._check_length(length, min_len, max_len, start, "binary", "bytes")
            if length > (inp.length - inp.pos) // 8:
                raise ExiError(f"binary of {length} bytes runs past the end", start)
            return bytes(inp.bits(8) for _ in range(length))
        if not lo <= value <= hi:
            raise ExiError(f"integer {value} outside {lo}..{hi}", start)
        return value

    @staticmethod
    def _check_length(length: int, low: int, high: int, at: int, what: str, unit: str) -> None:
        if length < low or (high and length > high):
            limit = f"{low}..{high}" if high else f"at least {low}"
            raise ExiError(f"{what} of {length} {unit}, allowed {limit}", at)

    def simple_element(self, vindex: int) -> object:
        if self.inp.bits(1):
            raise ExiError(
                "undeclared event in a simple element (second-level code)", self.inp.pos - 1
            )
        value = self.value(vindex)
        if self.inp.bits(1):
            raise ExiError(
                "undeclared event after a simple value (second-level code)", self.inp.pos - 1
            )
        return value

    def complex(self, type_index: int, depth: int) -> object:
        g = self.g
        if depth > MAX_DEPTH:
            raise ExiError(f"nested deeper than {MAX_DEPTH}", self.inp.pos)
        cls = g.classes[type_index]
        obj: object = object.__new__(cls)
        _, state, first_field, n_fields, _ = g.types[type_index]
        for field_index in range(first_field, first_field + n_fields):
            py_name, _xsd, flags = g.fields[field_index]
            object.__setattr__(obj, g.strings[py_name], [] if flags & F_LIST else None)
        count = 0
        while True:
            enabled = _enabled(g, state, count)
            at = self.inp.pos
            code = self.inp.bits(_bits_for(len(enabled) + 1))
            if code >= len(enabled):
                raise ExiError(
                    f"event code {code} in {g.type_name(type_index)}: "
                    f"undeclared or second-level events are not part of ISO 15118",
                    at,
                )
            p = enabled[code]
            kind, _guard, field, target, arg, _qname = g.prods[p]
            if kind == EE:
                return obj
            if kind == SE:
                value = self.complex(arg, depth + 1)
            elif kind == SE_SIMPLE:
                value = self.simple_element(arg)
            elif kind in (AT, CH) or (kind == CH_UNTYPED and field != NO_FIELD):
                value = self.value(arg)
            else:
                raise ExiError(
                    f"wildcard or untyped content in {g.type_name(type_index)} is not supported", at
                )
            name = g.strings[g.fields[field][0]]
            if g.fields[field][2] & F_LIST:
                getattr(obj, name).append(value)
            else:
                object.__setattr__(obj, name, value)
            state, count = target, _next_count(g, state, target, count)


_GRAMMARS: dict[str, Grammar] = {}


def grammar(name: str) -> Grammar:
    if name not in _GRAMMARS:
        if name not in _grammar.SETS:
            raise ExiError(f"unknown schema {name!r}; known: {', '.join(_grammar.SETS)}")
        _GRAMMARS[name] = Grammar(name)
    return _GRAMMARS[name]


def _root_index(
    g: Grammar, roots: tuple[tuple[int, int, int], ...], obj: object, element: str | None
) -> int:
    for index, (qname, is_simple, arg) in enumerate(roots):
        if element is not None:
            if g.strings[qname] == element:
                return index
        elif not is_simple and g.classes[arg] is type(obj):
            return index
    wanted = element or type(obj).__name__
    raise ExiError(f"{g.name}: {wanted} is not a root element of this schema")


def _encode(schema: str, message: object, element: str | None, fragment: bool) -> tuple[str, bytes]:
    """(root element name, stream), whatever the stream's length."""
    g = grammar(schema)
    roots = g.fragments if fragment else g.globals
    index = _root_index(g, roots, message, element)
    encoder = Encoder(g)
    width = _bits_for(len(roots) + (2 if fragment else 1))
    encoder.out.bits(HEADER, 8)
    encoder.out.bits(index, width)
    qname, is_simple, arg = roots[index]
    where = str(g.strings[qname])
    if is_simple:
        encoder.simple_element(arg, message, where)
    else:
        encoder.complex(arg, message, where, 0)
    if fragment:
        encoder.out.bits(len(roots) + 1, width)  # ED
    return where, encoder.out.getvalue()


def encode_unlimited(schema: str, message: object, element: str | None, fragment: bool) -> bytes:
    """The stream without the MAX_STREAM check: what a codec without our limit would send.

    For tests and fuzz seeds that need a real message above the limit, which both backends
    refuse to write and to read.
    """
    return _encode(schema, message, element, fragment)[1]


class PythonBackend:
    name = "python"

    def encode(self, schema: str, message: object, element: str | None, fragment: bool) -> bytes:
        where, data = _encode(schema, message, element, fragment)
        if len(data) > MAX_STREAM:
            limit = f"more than the EXI stream limit of {MAX_STREAM} bytes"
            raise ExiError(f"{where}: encodes to {len(data)} bytes, {limit}")
        return data

    def decode(self, schema: str, data: bytes, fragment: bool) -> tuple[str, object]:
        g = grammar(schema)
        if len(data) > MAX_STREAM:
            limit = f"more than the EXI stream limit of {MAX_STREAM} bytes"
            raise ExiError(f"stream of {len(data)} bytes, {limit}", 0)
        roots = g.fragments if fragment else g.globals
        decoder = Decoder(g, bytes(data))
        header = decoder.inp.bits(8)
        if header != HEADER:
            raise ExiError(f"EXI header 0x{header:02x}, expected 0x80 (no options, version 1)", 0)
        width = _bits_for(len(roots) + (2 if fragment else 1))
        index = decoder.inp.bits(width)
        if index >= len(roots):
            raise ExiError(f"document starts with event {index}, not a declared element", 8)
        qname, is_simple, arg = roots[index]
        value = decoder.simple_element(arg) if is_simple else decoder.complex(arg, 0)
        if fragment:
            at = decoder.inp.pos
            end = decoder.inp.bits(width)
            if end != len(roots) + 1:
                raise ExiError("fragment holds more than one element", at)
        return str(g.strings[qname]), value
