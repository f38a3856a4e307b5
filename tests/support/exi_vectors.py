"""The shared EXI vectors (../shared/exi-vectors) and what we knowingly do differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / "shared"
VECTOR_DIR = SHARED / "exi-vectors"
XSD_DIR = SHARED / "iso15118-xsd"

# (schema, message, variant) -> why our result differs from the independent codec's.
EXPECTED_DIFFERENCES = {
    ("iso2", "MeteringReceiptReq", "min"): (
        "quirk Q1: the codec wrote an absent SAScheduleTupleID as 0, which SAIDType (1..255) "
        "does not allow, so it fell back to an untyped second-level CH event; we refuse 0 when "
        "encoding and the second-level event when decoding"
    ),
}


def load(name: str) -> list[dict[str, Any]]:
    with (VECTOR_DIR / name).open() as lines:
        return [json.loads(line) for line in lines]


def vector_id(vector: dict[str, Any]) -> str:
    return f"{vector['schema']}-{vector['message']}-{vector.get('variant')}"


def key(vector: dict[str, Any]) -> tuple[str, str, str]:
    return (vector["schema"], vector["message"], vector.get("variant", ""))


MESSAGES = load("vectors.jsonl")
FRAGMENTS = load("vectors_fragments.jsonl")
