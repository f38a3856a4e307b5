"""The input format of fuzz/exi_fuzz.py, and what the target asserts of each input.

An input is one selector byte, then the EXI stream. The selector's top bit is the fragment
mode, its other seven bits the schema (an index into `exi.Schema`, taken modulo the number
of schemas, so that every byte selects one). `fuzz_input` writes it for the seed corpus and
`split_input` reads it for the target: the two cannot drift apart.
"""

from __future__ import annotations

from charger.protocols import exi

SCHEMAS = tuple(exi.Schema)
FRAGMENT = 0x80  # selector bit: decode as an EXI fragment (the xmldsig digests of PnC)


def fuzz_input(schema: str, fragment: bool, stream: bytes) -> bytes:
    """The fuzzer input that makes the target decode `stream` in `schema`."""
    selector = SCHEMAS.index(exi.Schema(schema)) | (FRAGMENT if fragment else 0)
    return bytes([selector]) + stream


def split_input(data: bytes) -> tuple[exi.Schema, bool, bytes]:
    """(schema, fragment, stream) of a non-empty fuzzer input."""
    selector = data[0]
    schema = SCHEMAS[(selector & ~FRAGMENT) % len(SCHEMAS)]
    return schema, bool(selector & FRAGMENT), data[1:]


def check_input(backend: exi.Backend, data: bytes) -> bool:
    """The target's property: a stream that decodes encodes again, to the same message.

    Returns whether the stream decoded; an ExiError is a clean refusal, anything else
    (another exception, a sanitizer report) is a finding.
    """
    if not data:
        return False
    schema, fragment, stream = split_input(data)
    try:
        element, message = backend.decode(schema, stream, fragment)
    except exi.ExiError:
        return False
    again = backend.encode(schema, message, element, fragment)
    if backend.decode(schema, again, fragment) != (element, message):
        raise AssertionError("decoded message does not survive encode -> decode")
    return True
