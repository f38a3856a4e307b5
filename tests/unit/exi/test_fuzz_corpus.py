"""The fuzzer's seed corpus (fuzz/exi_seeds.py) as its target reads it (fuzz/exi_input.py).

CI's fuzz run starts from these seeds (tests/integration/test_exi_sanitizers.py). A seed
the target reads in another schema or mode than it was written for only tests refusals:
once all 21 fragment seeds did, written with the schema index | 0x80 and read as
`data[0] % 9`. Here every seed must decode, in the target's own check, except those
refused on purpose.
"""

from __future__ import annotations

from collections import Counter

import pytest

from charger.protocols import exi
from charger.protocols.exi import _cbackend, _pycodec
from fuzz.exi_input import SCHEMAS, check_input, fuzz_input, split_input
from fuzz.exi_seeds import ABOVE_LIMIT, BUILT_SCHEMAS, own_roots, seeds

C = _cbackend.CBackend()
PY = _pycodec.PythonBackend()
SEEDS = seeds()
# seeds the codec refuses, and why (the vector quirk is explained in test_vectors)
REFUSED = {"-iso2-MeteringReceiptReq-min": "quirk Q1: a second-level CH event for an invalid 0"}


@pytest.mark.parametrize("fragment", [False, True], ids=["document", "fragment"])
@pytest.mark.parametrize("schema", list(exi.Schema))
def test_the_target_reads_the_schema_and_mode_the_corpus_writes(
    schema: exi.Schema, fragment: bool
) -> None:
    stream = b"\x80\x12\x34"
    assert split_input(fuzz_input(schema, fragment, stream)) == (schema, fragment, stream)


def test_every_selector_byte_picks_a_schema_and_a_mode() -> None:
    picked = {split_input(bytes([selector]))[:2] for selector in range(256)}
    assert picked == {(schema, fragment) for schema in SCHEMAS for fragment in (False, True)}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_decodes_as_the_target_sees_it(name: str) -> None:
    data = SEEDS[name]
    schema, fragment, stream = split_input(data)
    refused = name.startswith(ABOVE_LIMIT) or any(name.endswith(key) for key in REFUSED)
    assert check_input(C, data) is not refused, (schema, fragment)
    if name.startswith(ABOVE_LIMIT):
        assert len(stream) > exi.MAX_STREAM


def test_the_corpus_holds_every_vector_fragment_and_message() -> None:
    modes = Counter(split_input(data)[1] for data in SEEDS.values())
    assert modes[True] == 21  # vectors_fragments.jsonl
    assert sum(name.startswith("vectors-") for name in SEEDS) == 395


@pytest.mark.parametrize("schema", BUILT_SCHEMAS)
def test_wpt_and_acdp_seeds_cover_every_message_as_our_codec_encodes_it(schema: str) -> None:
    """The vectors hold no -20 WPT or ACDP stream: the corpus builds one of each message."""
    built = {name: data for name, data in SEEDS.items() if name.startswith(f"built-{schema}-")}
    expected = {name for name, _index in own_roots(schema)}
    assert {name.split("-")[2] for name in built} == expected
    assert len(built) == 2 * len(expected) == {"iso20_wpt": 24, "iso20_acdp": 16}[schema]
    for data in built.values():
        seed_schema, fragment, stream = split_input(data)
        assert (seed_schema, fragment) == (schema, False)
        element, message = C.decode(schema, stream, False)
        assert PY.encode(schema, message, element, False) == stream
