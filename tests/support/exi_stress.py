"""Feeds an EXI backend everything nasty we have; run in a subprocess under sanitizers.

    python -m tests.support.exi_stress SANITIZED_EXTENSION.so

Loads the given build of `_exi` in place of the normal one, then decodes and encodes
every shared vector, every truncation, every single-bit flip of every vector and a few
thousand random streams. Prints `checked N streams` and exits 0 when nothing but
ExiError came out; a sanitizer report aborts the process instead.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import random
import sys
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "exi-vectors"


def load_extension(path: str) -> None:
    name = "charger.protocols.exi._exi"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module


def main() -> int:
    load_extension(sys.argv[1])
    from charger.protocols import exi
    from charger.protocols.exi import _cbackend

    backend = _cbackend.CBackend()
    checked = 0

    def attempt(schema: str, data: bytes, fragment: bool) -> None:
        nonlocal checked
        checked += 1
        try:
            element, message = backend.decode(schema, data, fragment)
        except exi.ExiError:
            return
        backend.encode(schema, message, element, fragment)

    vectors = []
    for name in ("vectors.jsonl", "vectors_fragments.jsonl"):
        vectors += [json.loads(line) for line in (VECTORS / name).open()]
    for vector in vectors:
        schema, fragment = vector["schema"], bool(vector.get("fragment"))
        data = bytes.fromhex(vector["exi_hex"])
        attempt(schema, data, fragment)
        for length in range(len(data)):
            attempt(schema, data[:length], fragment)
        for bit in range(min(len(data), 512) * 8):
            damaged = bytearray(data)
            damaged[bit // 8] ^= 0x80 >> (bit % 8)
            attempt(schema, bytes(damaged), fragment)
    rng = random.Random(70121)
    for _ in range(5000):
        schema = rng.choice(list(exi.Schema))
        attempt(schema, b"\x80" + rng.randbytes(rng.randrange(0, 200)), rng.random() < 0.3)
    print(f"checked {checked} streams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
