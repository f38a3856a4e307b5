"""One stream-size limit, `exi.MAX_STREAM`, in both decoders and both encoders.

A stream above it is refused when decoding and a message that would encode above it is
refused when encoding, with the same error from the C and the Python backend; a stream of
exactly the limit goes both ways on both. (The fuzzing campaign found a -2 header with a
70,000-byte SignatureValue that the C backend decoded and then could not encode, while the
Python backend encoded it.)
"""

from __future__ import annotations

import random

import pytest

from charger.protocols import exi
from charger.protocols.exi import _cbackend, _exi, _pycodec
from fuzz.exi_seeds import across_the_limit, signature, signed_session_stop

C = _cbackend.CBackend()
PY = _pycodec.PythonBackend()
BACKENDS = [C, PY]
LIMIT = "more than the EXI stream limit of 65536 bytes"


def value_bytes_for(stream_bytes: int) -> int:
    """The SignatureValue length that makes signed_session_stop encode to exactly that size."""
    probe = 60_000  # past 16 KiB the length prefix stays 3 bytes: one value byte, one stream byte
    size = len(_pycodec.encode_unlimited("iso2", signed_session_stop(probe), None, False))
    return probe + stream_bytes - size


def outcome(backend: exi.Backend, schema: str, data: bytes, fragment: bool) -> object:
    try:
        return backend.decode(schema, data, fragment)
    except exi.ExiError as exc:
        return ("error", str(exc), exc.bit_offset)


def test_both_backends_and_the_api_share_one_limit() -> None:
    assert exi.MAX_STREAM == _exi.MAX_STREAM == _pycodec.MAX_STREAM == 65_536


def test_the_fuzzers_stream_above_the_limit_is_refused_by_both_decoders() -> None:
    data = _pycodec.encode_unlimited("iso2", signed_session_stop(70_000), None, False)
    assert len(data) == 70_187
    for backend in BACKENDS:
        with pytest.raises(exi.ExiError) as caught:
            backend.decode(exi.Schema.ISO2, data, False)
        assert str(caught.value) == f"stream of 70187 bytes, {LIMIT} (at bit 0)", backend.name
        assert caught.value.bit_offset == 0


def test_a_message_above_the_limit_is_refused_by_both_encoders() -> None:
    message = signed_session_stop(70_000)
    for backend in BACKENDS:
        with pytest.raises(exi.ExiError) as caught:
            backend.encode(exi.Schema.ISO2, message, None, False)
        assert str(caught.value) == f"V2G_Message: encodes to 70187 bytes, {LIMIT}", backend.name
        assert caught.value.bit_offset is None


@pytest.mark.parametrize(
    ("schema", "element", "fragment", "message"),
    across_the_limit(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_both_encoders_count_the_same_size_past_the_limit(
    schema: str, element: str, fragment: bool, message: object
) -> None:
    """The C encoder only counts past the limit, aligned and unaligned: to the exact size."""
    size = len(_pycodec.encode_unlimited(schema, message, element, fragment))
    assert size > exi.MAX_STREAM
    for backend in BACKENDS:
        with pytest.raises(exi.ExiError) as caught:
            backend.encode(schema, message, element, fragment)
        assert str(caught.value) == f"{element}: encodes to {size} bytes, {LIMIT}", backend.name


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_the_api_refuses_through_either_backend(backend: exi.Backend) -> None:
    previous = exi.backend()
    exi.set_backend(backend)
    try:
        with pytest.raises(exi.ExiError, match=f"encodes to 70187 bytes, {LIMIT}"):
            exi.encode(signed_session_stop(70_000))
        with pytest.raises(exi.ExiError, match=f"Signature: encodes to 70176 bytes, {LIMIT}"):
            exi.encode_fragment(signature(70_000))
        with pytest.raises(exi.ExiError, match=f"stream of 65537 bytes, {LIMIT}"):
            exi.decode_fragment(exi.Schema.XMLDSIG, bytes(exi.MAX_STREAM + 1))
    finally:
        exi.set_backend(previous)


def test_a_stream_of_exactly_the_limit_goes_both_ways_on_both_backends() -> None:
    fits = value_bytes_for(exi.MAX_STREAM)
    message = signed_session_stop(fits)
    streams = [backend.encode(exi.Schema.ISO2, message, None, False) for backend in BACKENDS]
    assert len(streams[0]) == exi.MAX_STREAM and streams[0] == streams[1]
    for backend in BACKENDS:
        assert backend.decode(exi.Schema.ISO2, streams[0], False) == ("V2G_Message", message)

    one_more = signed_session_stop(fits + 1)
    for backend in BACKENDS:
        with pytest.raises(exi.ExiError, match=f"encodes to 65537 bytes, {LIMIT}"):
            backend.encode(exi.Schema.ISO2, one_more, None, False)
        with pytest.raises(exi.ExiError, match=f"stream of 65537 bytes, {LIMIT}"):
            backend.decode(exi.Schema.ISO2, streams[0] + b"\x00", False)


@pytest.mark.parametrize("fragment", [False, True], ids=["document", "fragment"])
def test_streams_around_the_limit_come_out_alike_from_both_backends(fragment: bool) -> None:
    """The differential check of test_robustness, for lengths at and above the limit."""
    rng = random.Random(70_121)
    signed = _pycodec.encode_unlimited("iso2", signed_session_stop(70_000), None, False)
    for schema in exi.Schema:
        candidates = [
            b"\x80" + rng.randbytes(exi.MAX_STREAM - 1),
            b"\x80" + rng.randbytes(exi.MAX_STREAM),
            b"\x80" + rng.randbytes(rng.randrange(exi.MAX_STREAM + 1, 2 * exi.MAX_STREAM)),
            signed[: exi.MAX_STREAM],
            signed[: exi.MAX_STREAM + 1],
            signed,
        ]
        for data in candidates:
            result = outcome(C, schema, data, fragment)
            assert result == outcome(PY, schema, data, fragment), (schema, len(data))
            if len(data) > exi.MAX_STREAM:
                assert result == ("error", f"stream of {len(data)} bytes, {LIMIT} (at bit 0)", 0)
