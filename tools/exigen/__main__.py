"""python -m tools.exigen [--check] [XSD_DIR]: (re)generate the EXI codec sources.

Writes, all into charger/protocols/exi/_generated/: the message classes (<family>.py),
the Python grammar tables (_grammar.py), the class bindings (_bindings.py), the C grammar
tables (_exi_tables.h) and the package's __init__.py. With --check, writes nothing and
exits 1 when any generated file differs from what is committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import emit
from .tables import build_model

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "charger" / "protocols" / "exi" / "_generated"
DEFAULT_XSD = ROOT.parent / "shared" / "iso15118-xsd"


def generate(xsd_dir: Path) -> dict[Path, str]:
    model = build_model(xsd_dir)
    files = {OUT / "__init__.py": emit.package_init()}
    files.update(
        {OUT / f"{module}.py": text for module, text in emit.python_modules(model).items()}
    )
    files[OUT / "_grammar.py"] = emit.python_tables(model)
    files[OUT / "_bindings.py"] = emit.python_bindings(model)
    files[OUT / "_exi_tables.h"] = emit.c_tables(model)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.exigen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("xsd_dir", nargs="?", type=Path, default=DEFAULT_XSD)
    args = parser.parse_args()
    stale = []
    for path, text in generate(args.xsd_dir).items():
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"exigen: {path} differs from what the schemas generate", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
