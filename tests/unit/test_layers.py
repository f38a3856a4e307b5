"""The layer rules of docs/architecture.md hold, and a wrong import breaks them.

`lint-imports` reads the contracts in pyproject.toml. The second test copies the package
with one planted import from the HAL up into a protocol and checks the contract fails,
naming the rule and the import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_package_keeps_its_layer_contracts() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_an_import_from_the_hal_into_a_protocol_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "charger", tmp_path / "charger", ignore=_not_python)
    interfaces = tmp_path / "charger" / "hal" / "interfaces.py"
    interfaces.write_text(
        interfaces.read_text() + "\nfrom charger.protocols.slac import mme  # planted\n"
    )
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Layers: nothing below reaches up" in done.stdout
    assert "charger.hal is not allowed to import charger.protocols" in done.stdout
    assert "charger.hal.interfaces -> charger.protocols.slac.mme" in done.stdout


def test_a_service_importing_another_breaks_their_independence(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "charger", tmp_path / "charger", ignore=_not_python)
    service = tmp_path / "charger" / "protocols" / "slac" / "service.py"
    service.write_text(service.read_text() + "\nfrom charger.protocols.ocpp import rpc\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Services meet only on the bus BROKEN" in done.stdout


def _not_python(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if not (n.endswith(".py") or (Path(folder) / n).is_dir())} | {
        "__pycache__"
    }
