"""The seed corpus of the EXI fuzzer: named inputs in the format of fuzz/exi_input.py.

- every message and fragment of the shared vectors (../shared/exi-vectors);
- ISO 15118-20 WPT and ACDP, of which the vectors hold none: every message of the two
  schemas, once with only what it requires and once with every field it can take, built
  from the grammar tables and encoded by our codec;
- a stream above the codec's size limit (exi.MAX_STREAM), a -2 header signature with a
  70,000-byte SignatureValue, so that the fuzzer also mutates inputs on both sides of it.

tests/unit/exi/test_fuzz_corpus.py checks that each one decodes as the target reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from charger.protocols import exi
from charger.protocols.exi import _pycodec as P

from .exi_input import fuzz_input

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "exi-vectors"
BUILT_SCHEMAS = (exi.Schema.ISO20_WPT, exi.Schema.ISO20_ACDP)
ABOVE_LIMIT = "above-limit"  # name prefix of the seeds the codec must refuse for their size
FULL_DEPTH = 8  # nesting below which a "full" message stops adding optional fields


def seeds() -> dict[str, bytes]:
    """Seed name -> fuzzer input."""
    corpus: dict[str, bytes] = {}
    for name in ("vectors.jsonl", "vectors_fragments.jsonl"):
        with (VECTORS / name).open() as lines:
            for number, line in enumerate(lines):
                vector = json.loads(line)
                fragment = bool(vector.get("fragment"))
                variant = str(vector.get("variant", "")).replace("/", "_")
                label = f"{name.split('.')[0]}-{number:03d}-{vector['schema']}-{vector['message']}"
                label += f"-{variant}"
                stream = bytes.fromhex(vector["exi_hex"])
                corpus[label] = fuzz_input(vector["schema"], fragment, stream)
    encoder = exi.backend()
    for schema in BUILT_SCHEMAS:
        for element, root in own_roots(schema):
            for variant in ("min", "full"):
                message = build(schema, root, full=variant == "full")
                stream = encoder.encode(schema, message, element, False)
                corpus[f"built-{schema}-{element}-{variant}"] = fuzz_input(schema, False, stream)
    oversized = P.encode_unlimited(exi.Schema.ISO2, signed_session_stop(70_000), None, False)
    corpus[f"{ABOVE_LIMIT}-iso2-signature"] = fuzz_input(exi.Schema.ISO2, False, oversized)
    return corpus


def own_roots(schema: str) -> list[tuple[str, int]]:
    """(name, index) of the global elements a schema declares itself, not those it imports."""
    imported = _global_names(exi.Schema.XMLDSIG) | _global_names(exi.Schema.ISO20)
    g = P.grammar(schema)
    names = [(str(g.strings[qname]), index) for index, (qname, _s, _a) in enumerate(g.globals)]
    return [(name, index) for name, index in names if name not in imported]


def _global_names(schema: str) -> set[str]:
    g = P.grammar(schema)
    return {str(g.strings[qname]) for qname, _s, _a in g.globals}


def build(schema: str, root: int, *, full: bool) -> object:
    """A schema-valid message for root element number `root`, walking the grammar tables.

    Not `full`: only what the grammar requires, each value at its lower bound. `full`:
    every field the walk can reach set once (the first branch of a choice, one item of a
    list, no xmldsig Signature), values at their upper bound.
    """
    g = P.grammar(schema)
    _qname, is_simple, arg = g.globals[root]
    return _value(g, arg, full) if is_simple else _element(g, arg, full, 0)


def _value(g: P.Grammar, index: int, full: bool) -> object:
    kind, _width, lo, hi, min_len, max_len, enum_index = g.values[index]
    if kind == P.V_BOOL:
        return full
    if kind in (P.V_NBIT, P.V_UINT, P.V_INT):
        return hi if full else lo
    if kind == P.V_ENUM:
        members = g.enum_members[enum_index]
        return members[-1] if full else members[0]
    length = max(min_len, min(max_len or 16, 16)) if full else min_len
    if kind == P.V_STRING:
        return "".join(chr(ord("A") + i % 26) for i in range(length))
    return bytes(range(length))


def _usable(g: P.Grammar, prod: int) -> bool:
    kind, _guard, field, *_ = g.prods[prod]
    return kind not in (P.SE_ANY, P.CH_UNTYPED) or field != P.NO_FIELD


def _is_signature(g: P.Grammar, prod: int) -> bool:
    """An xmldsig element: the vectors' signed headers cover those, the seeds leave them out."""
    kind, _guard, _field, _target, arg, _qname = g.prods[prod]
    return kind == P.SE and g.classes[arg].__module__.endswith(".xmldsig")


def _element(g: P.Grammar, type_index: int, full: bool, depth: int) -> object:
    _, state, _first_field, _n_fields, _ = g.types[type_index]
    values: dict[int, Any] = {}
    count = 0
    for _step in range(10_000):
        enabled = [p for p in P._enabled(g, state, count) if _usable(g, p)]
        ends = [p for p in enabled if g.prods[p][0] == P.EE]
        fresh = [p for p in enabled if g.prods[p][0] != P.EE and g.prods[p][2] not in values]
        wanted = [p for p in fresh if not _is_signature(g, p)]
        if full and depth < FULL_DEPTH and wanted:
            prod = wanted[0]
        elif ends:
            prod = ends[0]
        elif fresh:
            prod = fresh[0]
        elif enabled:
            prod = enabled[0]
        else:
            raise AssertionError(f"{g.type_name(type_index)}: dead end in state {state}")
        kind, _guard, field, target, arg, _qname = g.prods[prod]
        if kind == P.EE:
            kwargs = {g.strings[g.fields[f][0]]: v for f, v in values.items()}
            return g.classes[type_index](**kwargs)
        value = _element(g, arg, full, depth + 1) if kind == P.SE else _value(g, arg, full)
        if g.fields[field][2] & P.F_LIST:
            values.setdefault(field, []).append(value)
        else:
            values[field] = value
        state, count = target, P._next_count(g, state, target, count)
    raise AssertionError(f"{g.type_name(type_index)}: no end after 10,000 events")


def signature(value_bytes: int, references: int = 1) -> Any:
    """An xmldsig Signature as -2 signs with, its SignatureValue `value_bytes` long.

    Each further reference moves the SignatureValue by a few bits: 1 to 8 of them put it at
    every bit offset within a byte.
    """
    xmldsig = exi.xmldsig
    return xmldsig.Signature(
        signed_info=xmldsig.SignedInfo(
            canonicalization_method=xmldsig.CanonicalizationMethod(
                algorithm="http://www.w3.org/TR/canonical-exi/"
            ),
            signature_method=xmldsig.SignatureMethod(
                algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
            ),
            reference=[
                xmldsig.Reference(
                    uri=f"#id{number}",
                    digest_method=xmldsig.DigestMethod(
                        algorithm="http://www.w3.org/2001/04/xmlenc#sha256"
                    ),
                    digest_value=bytes(range(32)),
                )
                for number in range(1, references + 1)
            ],
        ),
        signature_value=xmldsig.SignatureValue(value=bytes([0x5A]) * value_bytes),
    )


def signed_session_stop(value_bytes: int, references: int = 1) -> Any:
    """A -2 SessionStopReq whose header signature has a SignatureValue of that many bytes."""
    iso2 = exi.iso2
    return iso2.V2G_Message(
        header=iso2.MessageHeader(
            session_id=bytes.fromhex("5E2735D4C6C4D499"),
            signature=signature(value_bytes, references),
        ),
        body=iso2.Body(
            body_element=iso2.SessionStopReq(charging_session=iso2.ChargingSession.Terminate)
        ),
    )


def across_the_limit(value_bytes: int = 70_000) -> list[tuple[str, str, bool, Any]]:
    """(schema, element, fragment, message) that encode to more than exi.MAX_STREAM bytes.

    A binary value that crosses the limit at every bit offset within a byte (the C encoder
    copies aligned and unaligned bytes apart), as a -2 header and as an xmldsig fragment, and
    a string that crosses it one character at a time.
    """
    cases: list[tuple[str, str, bool, Any]] = []
    for references in range(1, 9):
        message = signed_session_stop(value_bytes, references)
        cases.append((exi.Schema.ISO2, "V2G_Message", False, message))
        cases.append((exi.Schema.XMLDSIG, "Signature", True, signature(value_bytes, references)))
    named = signature(64)
    named.key_info = exi.xmldsig.KeyInfo(key_name=["K" * value_bytes])
    cases.append((exi.Schema.XMLDSIG, "Signature", True, named))
    return cases
