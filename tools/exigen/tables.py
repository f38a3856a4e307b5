"""Flattens grammar sets into the integer tables both codec backends interpret.

The same tables are written as C arrays (for the `_exi` extension) and as Python tuples
(for the pure-Python backend), so the two backends can only differ in their engines.
Names are decided here too: one Python class per complex type, one enum per
enumerated simple type, one module per schema family.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import grammar as g
from .xsd import UNBOUNDED, ComplexType, SchemaError, SchemaSet, SimpleType

# (set name, root schema relative to the XSD folder, namespace that selects it)
SETS = [
    ("appProtocol", "V2G_CI_AppProtocol.xsd", "urn:iso:15118:2:2010:AppProtocol"),
    ("din", "din70121/V2G_CI_MsgDef.xsd", "urn:din:70121:2012:MsgDef"),
    ("iso2", "iso15118_2/V2G_CI_MsgDef.xsd", "urn:iso:15118:2:2013:MsgDef"),
    (
        "iso20_common",
        "iso15118_20/V2G_CI_CommonMessages.xsd",
        "urn:iso:std:iso:15118:-20:CommonMessages",
    ),
    ("iso20_ac", "iso15118_20/V2G_CI_AC.xsd", "urn:iso:std:iso:15118:-20:AC"),
    ("iso20_dc", "iso15118_20/V2G_CI_DC.xsd", "urn:iso:std:iso:15118:-20:DC"),
    ("iso20_wpt", "iso15118_20/V2G_CI_WPT.xsd", "urn:iso:std:iso:15118:-20:WPT"),
    ("iso20_acdp", "iso15118_20/V2G_CI_ACDP.xsd", "urn:iso:std:iso:15118:-20:ACDP"),
    ("xmldsig", "xmldsig-core-schema.xsd", "http://www.w3.org/2000/09/xmldsig#"),
]

# Python module per XML namespace; DIN and -2 spread over four namespaces each.
MODULES = {
    "urn:iso:15118:2:2010:AppProtocol": "app_protocol",
    "urn:iso:std:iso:15118:-20:CommonTypes": "iso20",
    "urn:iso:std:iso:15118:-20:CommonMessages": "iso20",
    "urn:iso:std:iso:15118:-20:AC": "iso20_ac",
    "urn:iso:std:iso:15118:-20:DC": "iso20_dc",
    "urn:iso:std:iso:15118:-20:WPT": "iso20_wpt",
    "urn:iso:std:iso:15118:-20:ACDP": "iso20_acdp",
    "http://www.w3.org/2000/09/xmldsig#": "xmldsig",
}
MODULE_PREFIXES = {"urn:din:70121:2012:": "din", "urn:iso:15118:2:2013:": "iso2"}

# value kinds (also the C enum order)
V_BOOL, V_NBIT, V_UINT, V_INT, V_STRING, V_ENUM, V_HEX, V_BASE64 = range(8)
# field flags
F_LIST, F_OPTIONAL, F_ATTR, F_VALUE = 1, 2, 4, 8
NO_FIELD = 0xFFFF
NO_STATE = 0xFFFFFFFF
COUNT_UNBOUNDED = 0xFFFF
NBIT_LIMIT = 4096  # EXI 7.1.5: bounded integers with at most 4096 values use n bits


def module_for(ns: str) -> str:
    if ns in MODULES:
        return MODULES[ns]
    for prefix, module in MODULE_PREFIXES.items():
        if ns.startswith(prefix):
            return module
    raise SchemaError(f"no Python module for namespace {ns}")


# XSD spellings the word splitter would cut badly
_NAME_OVERRIDES = {"DHpublickey": "dh_public_key"}
_TOKENS = {"EMAIDs": "Emaids", "IDs": "Ids", "SoC": "Soc", "PnC": "Pnc"}
_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """Stable XSD -> Python names: EVTargetCurrent -> ev_target_current, Power_L2 -> power_l2."""
    if name in _NAME_OVERRIDES:
        return _NAME_OVERRIDES[name]
    for token, replacement in _TOKENS.items():
        name = name.replace(token, replacement)
    words = [w for part in name.split("_") for w in _WORD_BREAK.sub(" ", part).split()]
    result = "_".join(w.lower() for w in words)
    return result + "_" if keyword.iskeyword(result) else result


def _class_name(base: str) -> str:
    name = base[: -len("Type")] if base.endswith("Type") and len(base) > 4 else base
    return name[0].upper() + name[1:]


@dataclass
class ClassDef:
    module: str
    name: str
    xsd_name: str
    fields: list[tuple[str, str, g.Field]] = field(default_factory=list)  # (py, xsd, field)
    ctype: ComplexType | None = None


@dataclass
class EnumDef:
    module: str
    name: str
    xsd_name: str
    values: tuple[str, ...]


@dataclass
class SetTables:
    name: str
    namespace: str
    strings: list[str] = field(default_factory=list)
    types: list[tuple[int, int, int, int, int]] = field(
        default_factory=list
    )  # class, state, field0, nfields, name
    fields: list[tuple[int, int, int]] = field(default_factory=list)  # py name, xsd name, flags
    states: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # prod0, nprods, cmin, cmax
    prods: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    values: list[tuple[int, int, int, int, int, int, int]] = field(default_factory=list)
    globals: list[tuple[int, int, int]] = field(default_factory=list)  # qname, is_simple, arg
    fragments: list[tuple[int, int, int]] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)  # type index -> class id
    enums: list[int] = field(default_factory=list)  # enum index in this set -> enum id
    _string_index: dict[str, int] = field(default_factory=dict)
    _value_index: dict[tuple[int, ...], int] = field(default_factory=dict)

    def string(self, text: str) -> int:
        if text not in self._string_index:
            self._string_index[text] = len(self.strings)
            self.strings.append(text)
        return self._string_index[text]


@dataclass
class Model:
    sets: list[SetTables]
    classes: list[ClassDef]
    enums: list[EnumDef]


class _Namer:
    def __init__(self) -> None:
        self.classes: list[ClassDef] = []
        self.enums: list[EnumDef] = []
        self._class_keys: dict[tuple[str, str], int] = {}
        self._enum_keys: dict[tuple[str, str], int] = {}
        self._taken: dict[tuple[str, str], str] = {}

    def _claim(self, module: str, wanted: str, key: str) -> str:
        name = wanted
        while (module, name) in self._taken and self._taken[(module, name)] != key:
            name += "_"
        self._taken[(module, name)] = key
        return name

    def class_id(self, ctype: ComplexType) -> int:
        if ctype.name is not None:
            ns, xsd_name = ctype.name.ns, ctype.name.local
        else:
            ns, xsd_name = ctype.element_ns, ctype.context
        key = (ns, xsd_name if ctype.name else "element " + xsd_name)
        if key not in self._class_keys:
            module = module_for(ns)
            name = self._claim(module, _class_name(xsd_name), "class " + "|".join(key))
            self._class_keys[key] = len(self.classes)
            self.classes.append(ClassDef(module, name, xsd_name, ctype=ctype))
        return self._class_keys[key]

    def enum_id(self, simple: SimpleType, context: str, ns: str) -> int:
        xsd_name = simple.name.local if simple.name else context
        ns = simple.name.ns if simple.name else ns
        key = (ns, xsd_name)
        if key not in self._enum_keys:
            module = module_for(ns)
            name = self._claim(module, _class_name(xsd_name), "enum " + "|".join(key))
            self._enum_keys[key] = len(self.enums)
            self.enums.append(EnumDef(module, name, xsd_name, simple.enum_values))
        simple.enum_id = self._enum_keys[key]
        return simple.enum_id


def _bits(count: int) -> int:
    return (count - 1).bit_length() if count > 1 else 0


def _value(tables: SetTables, namer: _Namer, simple: SimpleType, context: str, ns: str) -> int:
    lo, hi = simple.min_value, simple.max_value
    min_len, max_len = simple.min_length or 0, simple.max_length or 0
    if simple.kind == "boolean":
        row = (V_BOOL, 1, 0, 1, 0, 0, -1)
    elif simple.kind == "integer":
        if lo is not None and hi is not None and hi - lo < NBIT_LIMIT:
            row = (V_NBIT, _bits(hi - lo + 1), lo, hi, 0, 0, -1)
        elif lo is not None and lo >= 0:
            row = (V_UINT, 0, lo, 2**64 - 1 if hi is None else hi, 0, 0, -1)
        else:
            row = (
                V_INT,
                0,
                -(2**63) if lo is None else lo,
                2**63 - 1 if hi is None else hi,
                0,
                0,
                -1,
            )
    elif simple.kind == "string":
        row = (V_STRING, 0, 0, 0, min_len, max_len, -1)
    elif simple.kind == "enum":
        enum = namer.enum_id(simple, context, ns)
        if enum not in tables.enums:
            tables.enums.append(enum)
        local = tables.enums.index(enum)
        row = (V_ENUM, _bits(len(simple.enum_values)), 0, len(simple.enum_values) - 1, 0, 0, local)
    elif simple.kind in ("hex", "base64"):
        row = (V_HEX if simple.kind == "hex" else V_BASE64, 0, 0, 0, min_len, max_len, -1)
    else:
        raise SchemaError(f"simple type kind {simple.kind}")
    if row not in tables._value_index:
        tables._value_index[row] = len(tables.values)
        tables.values.append(row)
    return tables._value_index[row]


def build_model(xsd_dir: Path) -> Model:
    namer = _Namer()
    sets = []
    for set_name, root, namespace in SETS:
        schema = SchemaSet(xsd_dir / root)
        grammar_set = g.build_grammar_set(set_name, schema)
        sets.append(_flatten(grammar_set, namespace, namer))
    return Model(sets, namer.classes, namer.enums)


def _flatten(gs: g.GrammarSet, namespace: str, namer: _Namer) -> SetTables:
    tables = SetTables(gs.name, namespace)
    type_index: dict[int, int] = {}
    for i, t in enumerate(gs.types):
        type_index.setdefault(id(t.type), i)
    relaxed_index = {qname: gs.types.index(grammar) for qname, grammar in gs.relaxed.items()}
    state_base: list[int] = []
    total = 0
    for grammar in gs.types:
        state_base.append(total)
        total += len(grammar.states)
    field_base = 0
    for index, grammar in enumerate(gs.types):
        ctype = grammar.type
        class_id = namer.class_id(ctype)
        cdef = namer.classes[class_id]
        tables.classes.append(class_id)
        ns = ctype.name.ns if ctype.name else ctype.element_ns
        py_fields = []
        for f in grammar.fields:
            flags = (F_LIST if f.is_list else 0) | (F_OPTIONAL if f.optional else 0)
            flags |= F_ATTR if f.kind == "attr" else F_VALUE if f.kind == "value" else 0
            py_name = snake_case(f.xsd_name) if f.kind != "value" else "value"
            py_fields.append((py_name, f.xsd_name, f))
            tables.fields.append((tables.string(py_name), tables.string(f.xsd_name), flags))
        names = [p for p, _, _ in py_fields]
        if len(set(names)) != len(names):
            raise SchemaError(f"{cdef.xsd_name}: two fields map to one Python name: {names}")
        if not cdef.fields:
            cdef.fields = py_fields
        elif [p for p, _, _ in cdef.fields] != names:
            raise SchemaError(f"{cdef.xsd_name}: differs between schema sets")
        base = state_base[index]
        tables.types.append(
            (class_id, base, field_base, len(grammar.fields), tables.string(cdef.xsd_name))
        )
        for state in grammar.states:
            cmax = (
                0
                if state.count_max == 0
                else COUNT_UNBOUNDED
                if state.count_max == UNBOUNDED
                else state.count_max
            )
            tables.states.append((len(tables.prods), len(state.productions), state.count_min, cmax))
            for prod in state.productions:
                target = NO_STATE if prod.target < 0 else base + prod.target
                arg = 0
                if prod.kind == g.SE:
                    assert isinstance(prod.child, ComplexType)
                    arg = type_index[id(prod.child)]
                elif prod.kind in (g.AT, g.CH, g.SE_SIMPLE) or prod.child is not None:
                    assert isinstance(prod.child, SimpleType)
                    context = prod.qname.local if prod.qname else cdef.xsd_name
                    arg = _value(tables, namer, prod.child, context, ns)
                fld = NO_FIELD if prod.field < 0 else field_base + prod.field
                qname = tables.string(prod.qname.local) if prod.qname else tables.string("")
                tables.prods.append((prod.kind, prod.guard, fld, target, arg, qname))
        field_base += len(grammar.fields)
    for decls, out in (
        (gs.global_elements, tables.globals),
        (gs.fragment_elements, tables.fragments),
    ):
        for decl in decls:
            name = tables.string(decl.qname.local)
            if out is tables.fragments and decl.qname in relaxed_index:
                out.append((name, 0, relaxed_index[decl.qname]))
            elif isinstance(decl.type, SimpleType):
                arg = _value(tables, namer, decl.type, decl.qname.local, decl.qname.ns)
                out.append((name, 1, arg))
            else:
                out.append((name, 0, type_index[id(decl.type)]))
    return tables
