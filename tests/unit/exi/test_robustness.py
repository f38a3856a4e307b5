"""Damaged streams: truncated, bit-flipped, random. Never a crash, never silent garbage.

Each damaged stream must either raise ExiError or decode to a message that encodes back
to a valid stream; the C and Python backends must agree on which, and on the result.
"""

from __future__ import annotations

import random

import pytest

from charger.protocols import exi
from charger.protocols.exi import _cbackend, _pycodec
from tests.support.exi_vectors import EXPECTED_DIFFERENCES, MESSAGES, key

C = _cbackend.CBackend()
PY = _pycodec.PythonBackend()
SAMPLE = [
    v
    for v in MESSAGES
    if v["variant"] in ("captured", "full") and key(v) not in EXPECTED_DIFFERENCES
]


def outcome(backend: exi.Backend, schema: str, data: bytes) -> object:
    try:
        return backend.decode(schema, data, False)
    except exi.ExiError as exc:
        return ("error", str(exc), exc.bit_offset)


@pytest.mark.parametrize("vector", SAMPLE[::4], ids=lambda v: f"{v['schema']}-{v['message']}")
def test_every_truncation_fails_cleanly_and_alike(vector: dict[str, str]) -> None:
    data = bytes.fromhex(vector["exi_hex"])
    for length in range(len(data)):
        result = outcome(C, vector["schema"], data[:length])
        assert result == outcome(PY, vector["schema"], data[:length])
        assert isinstance(result, tuple) and result[0] == "error", f"{length} bytes decoded"


@pytest.mark.parametrize("vector", SAMPLE[::6], ids=lambda v: f"{v['schema']}-{v['message']}")
def test_bit_flips_fail_cleanly_or_decode_to_a_valid_message(vector: dict[str, str]) -> None:
    data = bytes.fromhex(vector["exi_hex"])
    schema = vector["schema"]
    for bit in range(min(len(data) * 8, 600)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
        result = outcome(C, schema, bytes(damaged))
        assert result == outcome(PY, schema, bytes(damaged)), f"backends differ at bit {bit}"
        if result[0] != "error":
            element, message = result  # type: ignore[misc]
            assert C.decode(schema, C.encode(schema, message, element, False), False) == result


def test_random_streams_in_every_schema_fail_cleanly() -> None:
    rng = random.Random(15118)
    for schema in exi.Schema:
        for _ in range(300):
            data = bytes([0x80]) + rng.randbytes(rng.randrange(0, 64))
            assert outcome(C, schema, data) == outcome(PY, schema, data)


def test_errors_name_the_bit_offset() -> None:
    header = r"EXI header 0x00, expected 0x80.*\(at bit 0\)"
    with pytest.raises(exi.ExiError, match=header) as caught:
        exi.decode(exi.Schema.ISO2, b"\x00\x00")
    assert caught.value.bit_offset == 0
    with pytest.raises(exi.ExiError, match=r"stream ends inside a 8-bit field \(at bit 0\)"):
        exi.decode(exi.Schema.ISO2, b"")
