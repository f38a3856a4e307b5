"""Hypothesis strategies for schema-valid messages, drawn by walking the grammar tables.

The walk chooses among the productions the grammar allows in each state, so every
drawn message is valid by construction (choices, repetition bounds, facets) and
shrinks towards the first production of each state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from charger.protocols.exi import _pycodec as P

MAX_REPEAT = 2  # repetitions before the walk prefers to move on
MAX_DEPTH = 4  # nesting before the walk prefers to end elements
EVENT_BUDGET = 60  # events per message before the walk heads for the end


def _value(draw: Any, g: P.Grammar, index: int) -> object:
    kind, _width, lo, hi, min_len, max_len, enum_index = g.values[index]
    if kind == P.V_BOOL:
        return draw(st.booleans())
    if kind in (P.V_NBIT, P.V_UINT, P.V_INT):
        return draw(st.integers(lo, hi))
    if kind == P.V_ENUM:
        return draw(st.sampled_from(g.enum_members[enum_index]))
    high = max(min_len, min(max_len or 8, 8))
    if kind == P.V_STRING:
        return draw(st.text(min_size=min_len, max_size=high))
    return draw(st.binary(min_size=min_len, max_size=high))


def _usable(g: P.Grammar, prod: int) -> bool:
    kind, _guard, field, *_ = g.prods[prod]
    return kind not in (P.SE_ANY, P.CH_UNTYPED) or (kind == P.CH_UNTYPED and field != P.NO_FIELD)


def _element(draw: Any, g: P.Grammar, type_index: int, depth: int, budget: list[int]) -> object:
    _, state, _first_field, _n_fields, _ = g.types[type_index]
    values: dict[int, Any] = {}
    count = 0
    while True:
        enabled = [p for p in P._enabled(g, state, count) if _usable(g, p)]
        if not enabled:
            raise AssertionError(f"{g.type_name(type_index)}: dead end in state {state}")
        budget[0] -= 1
        moving_on = [p for p in enabled if g.prods[p][3] != state or g.prods[p][0] == P.EE]
        if moving_on and (count >= MAX_REPEAT or depth >= MAX_DEPTH or budget[0] < 0):
            enabled = moving_on
        ends = [p for p in enabled if g.prods[p][0] == P.EE]
        if ends and (depth >= MAX_DEPTH or budget[0] < 0):
            enabled = ends
        prod = draw(st.sampled_from(enabled))
        kind, _guard, field, target, arg, _qname = g.prods[prod]
        if kind == P.EE:
            break
        value = _element(draw, g, arg, depth + 1, budget) if kind == P.SE else _value(draw, g, arg)
        if g.fields[field][2] & P.F_LIST:
            values.setdefault(field, []).append(value)
        else:
            values[field] = value
        state, count = target, P._next_count(g, state, target, count)
    kwargs = {g.strings[g.fields[f][0]]: v for f, v in values.items()}
    return g.classes[type_index](**kwargs)


@st.composite
def messages(draw: Any, schema: str, root: int, fragment: bool = False) -> tuple[str, object]:
    """(element name, message) for root element number `root` of `schema`."""
    g = P.grammar(schema)
    qname, is_simple, arg = (g.fragments if fragment else g.globals)[root]
    value = _value(draw, g, arg) if is_simple else _element(draw, g, arg, 0, [EVENT_BUDGET])
    return g.strings[qname], value


# xmldsig types that hold nothing but wildcard content, which the codec does not code
WILDCARD_ONLY = {"SignatureProperty", "SignatureProperties"}


def roots(schema: str) -> list[tuple[str, int]]:
    """The schema's own global elements (not those of the schemas it imports)."""
    imported: set[str] = set()
    if schema != "xmldsig":
        imported |= _global_names("xmldsig")
    if schema.startswith("iso20_") and schema != "iso20_common":
        imported |= _global_names("iso20_common")
    g = P.grammar(schema)
    names = [(g.strings[q], i) for i, (q, _s, _a) in enumerate(g.globals)]
    return [(n, i) for n, i in names if n not in imported and n not in WILDCARD_ONLY]


def _global_names(schema: str) -> set[str]:
    g = P.grammar(schema)
    return {g.strings[q] for q, _s, _a in g.globals}
