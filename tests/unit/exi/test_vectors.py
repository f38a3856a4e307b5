"""Every shared vector: decoding gives the independent codec's content, encoding its bytes."""

from __future__ import annotations

from typing import Any

import pytest

from charger.protocols import exi
from tests.support.exi_vectors import EXPECTED_DIFFERENCES, FRAGMENTS, MESSAGES, key, vector_id


@pytest.fixture(params=["c", "python"])
def backend(request: pytest.FixtureRequest) -> Any:
    previous = exi.backend()
    yield exi.set_backend(request.param)
    exi.set_backend(previous)


@pytest.mark.parametrize("vector", MESSAGES + FRAGMENTS, ids=vector_id)
def test_vector_round_trips_byte_for_byte(vector: dict[str, Any], backend: Any) -> None:
    if key(vector) in EXPECTED_DIFFERENCES:
        pytest.skip("expected difference, tested below")
    assert exi.check_vector(vector) == []


def test_every_message_type_of_every_schema_has_a_vector() -> None:
    covered = {(v["schema"], v["message"]) for v in MESSAGES}
    assert len(covered) == 2 + 29 + 34 + 26 + 4 + 10  # counts from the vectors' README


def test_quirk_q1_out_of_range_default_is_refused_both_ways(backend: Any) -> None:
    (vector,) = [v for v in MESSAGES if key(v) in EXPECTED_DIFFERENCES]
    message = exi.from_json("iso2", vector["json"])
    with pytest.raises(exi.ExiError, match=r"sa_schedule_tuple_id: 0 is outside 1\.\.255"):
        exi.encode(message)
    with pytest.raises(exi.ExiError, match="second-level") as caught:
        exi.decode("iso2", bytes.fromhex(vector["exi_hex"]))
    assert caught.value.bit_offset == 178
    # without the invalid default, the message the codec was given encodes and decodes
    original = exi.from_json("iso2", vector["input_json"])
    assert exi.decode("iso2", exi.encode(original)) == original


def test_fragment_of_a_signed_element_matches_what_the_signer_hashed(backend: Any) -> None:
    (vector,) = [v for v in FRAGMENTS if v["message"] == "AuthorizationReq"][:1]
    body = exi.from_json("iso2", vector["json"], fragment=True)
    assert exi.encode_fragment(body, exi.Schema.ISO2) == bytes.fromhex(vector["exi_hex"])
    assert exi.decode_fragment(exi.Schema.ISO2, bytes.fromhex(vector["exi_hex"])) == (
        "AuthorizationReq",
        body,
    )
