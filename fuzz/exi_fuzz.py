"""Coverage-guided fuzzing of the EXI decoder (atheris / libFuzzer).

Run through tests/integration/test_exi_sanitizers.py, which builds an instrumented `_exi`
with clang, writes the seed corpus (fuzz/exi_seeds.py) and preloads atheris' ASan +
libFuzzer runtime:

    python fuzz/exi_fuzz.py EXTENSION.so CORPUS_DIR -max_total_time=60 -max_len=N

The first input byte picks the schema and fragment mode, the rest is the stream
(fuzz/exi_input.py reads it, as the seed corpus writes it). A stream that decodes must
encode again and decode to the same message.
"""

from __future__ import annotations

import sys

import atheris

sys.path.insert(0, ".")
from tests.support.exi_stress import load_extension

load_extension(sys.argv.pop(1))

with atheris.instrument_imports():
    from charger.protocols.exi import _cbackend
    from fuzz.exi_input import check_input

BACKEND = _cbackend.CBackend()


def test_one_input(data: bytes) -> None:
    check_input(BACKEND, data)


atheris.Setup(sys.argv, test_one_input)
atheris.Fuzz()
