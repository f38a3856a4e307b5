"""Coverage-guided fuzzing of the EXI decoder (atheris / libFuzzer).

Run through tests/integration/test_exi_fuzz.py, which builds an instrumented `_exi`
with clang and preloads atheris' ASan + libFuzzer runtime:

    python fuzz/exi_fuzz.py EXTENSION.so CORPUS_DIR -max_total_time=60

The first input byte picks the schema and fragment mode, the rest is the stream. A
stream that decodes must encode again and decode to the same message.
"""

from __future__ import annotations

import sys

import atheris

sys.path.insert(0, ".")
from tests.support.exi_stress import load_extension

load_extension(sys.argv.pop(1))

with atheris.instrument_imports():
    from charger.protocols import exi
    from charger.protocols.exi import _cbackend

BACKEND = _cbackend.CBackend()
SCHEMAS = list(exi.Schema)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    schema = SCHEMAS[data[0] % len(SCHEMAS)]
    fragment = bool(data[0] & 0x80)
    try:
        element, message = BACKEND.decode(schema, data[1:], fragment)
    except exi.ExiError:
        return
    again = BACKEND.encode(schema, message, element, fragment)
    if BACKEND.decode(schema, again, fragment) != (element, message):
        raise AssertionError("decoded message does not survive encode -> decode")


atheris.Setup(sys.argv, test_one_input)
atheris.Fuzz()
