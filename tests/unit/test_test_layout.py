"""Tests share helpers through one place, and benchmarks run without the test extras.

Test modules never import each other, a conftest, or a helper module that lives beside
them: shared helpers are in `tests/support/` (test-only) or `rig/` (pytest-free, shared
with the benchmarks), fixtures in conftest files. Benchmarks and the rig import no test
code and nothing that only `scripts/bootstrap.sh --test` installs, so every
`python -m bench.NAME` runs after the runtime bootstrap alone.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
NEVER_IN_BENCH = {"tests", "pytest", "_pytest", "hypothesis", "atheris"}


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "node_modules" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth (lazy imports
    in functions too), relative ones resolved; `from a import b` yields `a` and `a.b`."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def helper_import_violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """What a module under tests/ must not import: a test module, a conftest, or any other
    module of `tests` outside `tests/support/`."""
    found: dict[int, str] = {}  # line -> the first offending name on it
    for line, name in imports(source, module, is_package):
        parts = name.split(".")
        if line not in found and (
            any(p == "conftest" or p.startswith("test_") for p in parts)
            or (parts[0] == "tests" and len(parts) > 1 and parts[1] != "support")
        ):
            found[line] = name
    return [f"{module}:{line} imports {name}" for line, name in sorted(found.items())]


def test_test_modules_import_shared_helpers_only_from_tests_support() -> None:
    found = [
        violation
        for path in python_files("tests")
        for violation in helper_import_violations(
            path.read_text(), module_name(path), path.name == "__init__.py"
        )
    ]
    assert found == [], "\n".join(
        ["move what test modules share to tests/support/ (or rig/) or a conftest:", *found]
    )


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from tests.integration.ocpp.test_provisioning import station", "tests.unit.test_x"),
        ("from tests.integration.conftest import free_port", "tests.integration.test_x"),
        ("from tests.integration.ocpp import test_remote", "tests.integration.ocpp.test_x"),
        ("import conftest", "tests.integration.test_x"),
        ("from .vectors import MESSAGES", "tests.unit.exi.test_x"),
        ("from . import test_api", "tests.unit.test_x"),
        ("def f():\n    from tests.integration.ocpp.csms import CsmsState", "tests.unit.x"),
    ],
)
def test_a_planted_import_of_a_test_module_is_found(source: str, module: str) -> None:
    assert helper_import_violations(source, module) != []


def test_imports_of_the_support_package_and_the_rig_are_fine() -> None:
    source = "from tests.support.probe import probe_on\nfrom rig.csms import CsmsState\n"
    assert helper_import_violations(source, "tests.integration.test_x") == []


# ---------------------------------------------------------------- benchmarks and the rig


def requirements(names: Iterable[str]) -> set[str]:
    """`names` and everything they require, transitively (installed distributions)."""
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            required = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, required):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def extras_only_modules() -> set[str]:
    """Top-level modules that `bootstrap.sh --test` installs and `bootstrap.sh` does not:
    the test extras of setup.cfg and what they pull in, less the runtime's own closure."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")

    def listed(value: str) -> list[str]:
        lines = (line.strip() for line in value.splitlines())
        return [Requirement(line).name for line in lines if line and not line.startswith("#")]

    runtime = requirements(listed(setup["options"]["install_requires"]))
    extras = requirements(listed(setup["options.extras_require"]["test"])) - runtime
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if {canonicalize_name(d) for d in dists} <= extras
    }


BLOCKER = """
import importlib, importlib.abc, sys, traceback
blocked = set(sys.argv[1].split(","))

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
failed = 0
for module in sys.argv[2:]:
    try:
        importlib.import_module(module)
    except BaseException:
        failed += 1
        print(f"--- {module}", file=sys.stderr)
        traceback.print_exc()
sys.exit(1 if failed else 0)
"""


def import_without(blocked: set[str], modules: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(sorted(blocked)), *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_blocked_modules_are_the_test_extras() -> None:
    blocked = extras_only_modules()
    assert {"pytest", "_pytest", "hypothesis", "atheris", "mypy", "ruff"} <= blocked
    # what the runtime needs stays importable; jsonschema comes with the `ocpp` package
    assert not {"charger", "aiomqtt", "websockets", "ocpp", "jsonschema_rs"} & blocked
    assert ("jsonschema" in blocked) == ("jsonschema" not in requirements(["ocpp"]))


def test_benchmarks_and_the_rig_import_without_the_test_extras() -> None:
    modules = [module_name(p) for p in python_files("bench") + python_files("rig")]
    assert "bench.cp_latency" in modules and "rig.csms" in modules
    result = import_without(extras_only_modules() | {"tests"}, modules)
    assert result.returncode == 0, result.stderr


def test_a_planted_test_import_fails_the_blocked_import() -> None:
    result = import_without({"tests", "pytest"}, ["tests.support.polling", "json"])
    assert result.returncode == 1
    assert "--- tests.support.polling" in result.stderr and "--- json" not in result.stderr


def test_benchmarks_and_the_rig_import_no_test_code_even_lazily() -> None:
    found = [
        f"{module_name(path)}:{line} imports {name}"
        for path in python_files("bench") + python_files("rig")
        for line, name in imports(path.read_text(), module_name(path))
        if name.partition(".")[0] in NEVER_IN_BENCH
    ]
    assert found == []
