"""Every OCA Core case of the blocks this OCPP client covers has its own test, or is listed
in docs/ocpp-oca.md with its reason.

"Its own test" is a test function named after that one case (test_TC_E_41_CS_...), or
one parameter of a parametrised test whose id starts with the case
(pytest.param(..., id="TC_B_32_unknown_component")), with assertions of its own. A case
that only appears inside a combined name (test_TC_C_10_11_12_CS_...) does not count,
except for the cases still waiting for their rewrite on the OCTT rig (LEGACY_COMBINED,
which may only shrink; docs/ocpp-oca.md lists them too).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CASES = ROOT.parent / "shared" / "reference" / "ocpp201-cs-testcases.md"
BLOCKS = "ABCDEFGJLP"  # K, M, N: later work
OCA_TESTS = ROOT / "tests" / "integration" / "oca"  # the rewritten cases, one per test

# Cases whose only test is still a combined one of tests/integration/ocpp (written
# before the OCTT rig); each leaves this set when its own test on the rig lands.
LEGACY_COMBINED: frozenset[str] = frozenset()

# An OCTT-rig test asserts through these as well as with `assert`.
CHECKS = {
    "expect",
    "expect_msg",
    "nothing",
    "booted",
    "occupied",
    "authorized",
    "authorized_remotely",
    "stop_authorized",
    "ev_disconnected",
    "energy_transfer_started",
    "ev_connected_pre_session",
    "charging",
    "unavailable",
    "reset_and_boot",
    "set_variables",
}


def core_cases() -> set[str]:
    text = CASES.read_text(encoding="utf-8")
    core = text.split("### Core", 1)[1].split("\n### ", 1)[0]
    return {c for c in re.findall(r"^\| (TC_[A-Z]_\d+) \|", core, re.M) if c[3] in BLOCKS}


def cases_in_name(name: str) -> set[str]:
    """test_TC_E_39_E_05_F_04_CS_x -> TC_E_39, TC_E_05, TC_F_04; `G_04_to_G_10` is a
    range; a bare number after a case keeps its letter (TC_C_10_11_12_CS)."""
    match = re.match(r"test_TC_(.+?)_CS(_|$)", name)
    if match is None:
        return set()
    found: set[str] = set()
    letter, previous, in_range = "", 0, False
    for token in match.group(1).split("_"):
        if re.fullmatch(r"[A-Z]", token):
            letter = token
        elif token in ("to", "and"):
            in_range = token == "to"
        elif token.isdigit() and letter:
            number = int(token)
            start = previous + 1 if in_range else number
            found |= {f"TC_{letter}_{n:02d}" for n in range(start, number + 1)}
            previous, in_range = number, False
        else:
            raise AssertionError(f"{name}: cannot read the case ids at {token!r}")
    return found


def param_ids(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The cases of a parametrised test: ids of its pytest.param(..., id="TC_X_NN_...")."""
    ids: set[str] = set()
    for decorator in function.decorator_list:
        for node in ast.walk(decorator):
            if isinstance(node, ast.keyword) and node.arg == "id":
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    match = re.match(r"(TC_[A-Z]_\d+)(_|$)", value.value)
                    if match:
                        ids.add(match.group(1))
    return ids


def asserts(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if call and node.func.attr in CHECKS:  # type: ignore[attr-defined]
            return True
    return False


def all_tests() -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((path, node))
    return found


def cases_with_tests() -> dict[str, list[str]]:
    """Every case any test names, by name or by parameter id (combined ones included)."""
    named: dict[str, list[str]] = {}
    for path, node in all_tests():
        for case in cases_in_name(node.name) | param_ids(node):
            named.setdefault(case, []).append(f"{path.name}::{node.name}")
    return named


def cases_with_own_tests() -> dict[str, list[str]]:
    """Cases that have a test of their own: named alone, or one id of a parametrised
    test; with assertions."""
    own: dict[str, list[str]] = {}
    for path, node in all_tests():
        if not asserts(node):
            continue
        in_name, ids = cases_in_name(node.name), param_ids(node)
        mine = ids if ids else in_name if len(in_name) == 1 else set()
        for case in mine:
            own.setdefault(case, []).append(f"{path.name}::{node.name}")
    return own


def listed_cases() -> dict[str, str]:
    """docs/ocpp-oca.md: | TC_X_NN | reason |"""
    text = (ROOT / "docs" / "ocpp-oca.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| (TC_[A-Z]_\d+) \| (.+?) \|$", text, re.M))


@pytest.fixture(scope="module")
def core() -> set[str]:
    if not CASES.exists():
        pytest.skip(f"{CASES} is not beside the checkout")
    return core_cases()


def test_names_are_read_as_case_lists() -> None:
    assert cases_in_name("test_TC_E_39_E_05_F_04_CS_no_cable") == {
        "TC_E_39",
        "TC_E_05",
        "TC_F_04",
    }
    assert cases_in_name("test_TC_G_04_to_G_07_G_12_CS_x") == {
        "TC_G_04",
        "TC_G_05",
        "TC_G_06",
        "TC_G_07",
        "TC_G_12",
    }
    assert cases_in_name("test_TC_C_10_11_12_CS_x") == {"TC_C_10", "TC_C_11", "TC_C_12"}
    assert cases_in_name("test_offline_queue") == set()


def test_a_combined_name_is_no_test_of_its_own() -> None:
    source = """
@pytest.mark.parametrize(
    "x", [pytest.param(1, id="TC_B_32_unknown"), pytest.param(2, id="TC_B_33_x")]
)
async def test_TC_B_32_33_CS_get(x):
    assert x
async def test_TC_C_10_11_CS_combined():
    assert True
async def test_TC_E_41_CS_alone(octt):
    await octt.expect("TransactionEvent")
async def test_TC_E_42_CS_says_nothing():
    pass
"""
    functions = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.AsyncFunctionDef)]
    own = set()
    for node in functions:
        if asserts(node):
            ids, named = param_ids(node), cases_in_name(node.name)
            own |= ids if ids else named if len(named) == 1 else set()
    assert own == {"TC_B_32", "TC_B_33", "TC_E_41"}


def test_every_core_case_has_its_own_test_or_a_reason(core: set[str]) -> None:
    own, named, listed = cases_with_own_tests(), cases_with_tests(), listed_cases()
    assert len(core) > 150
    # a case only inside a combined name (and not yet waiting in LEGACY_COMBINED) fails
    missing = core - own.keys() - listed.keys() - LEGACY_COMBINED
    assert sorted(missing) == []
    assert sorted(LEGACY_COMBINED - named.keys()) == []  # the legacy test still exists
    assert sorted(LEGACY_COMBINED & own.keys()) == []  # rewritten: leaves the list
    assert sorted(named.keys() & listed.keys()) == []  # tested: not also excused
    assert sorted(listed.keys() - core) == []  # no stale entries
    assert all(len(reason) > 20 for reason in listed.values())


def test_the_rewritten_cases_have_one_test_each() -> None:
    """tests/integration/oca/: a name with several cases must be a parametrised test
    with one id per case, and no case has two tests there."""
    seen: dict[str, str] = {}
    for path, node in all_tests():
        if OCA_TESTS not in path.parents:
            continue
        in_name, ids = cases_in_name(node.name), param_ids(node)
        if len(in_name) > 1:
            assert ids == in_name, f"{node.name}: parametrise with one id per case"
        for case in ids or in_name:
            assert case not in seen, f"{case}: {seen.get(case)} and {node.name}"
            seen[case] = node.name


def test_tests_name_cases_that_exist(core: set[str]) -> None:
    text = CASES.read_text(encoding="utf-8")
    known = set(re.findall(r"TC_[A-Z]_\d+", text))
    assert sorted(cases_with_tests().keys() - known) == []
