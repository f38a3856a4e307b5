"""Every OCA Core case of the blocks this OCPP client covers has a test named after it,
or is listed in docs/ocpp-oca.md with its reason."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CASES = ROOT.parent / "shared" / "reference" / "ocpp201-cs-testcases.md"
BLOCKS = "ABCDEFGJP"  # K, L, M, N: later work


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


def cases_with_tests() -> dict[str, list[str]]:
    tests: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for case in cases_in_name(node.name):
                    tests.setdefault(case, []).append(f"{path.name}::{node.name}")
    return tests


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


def test_every_core_case_is_tested_or_listed_with_a_reason(core: set[str]) -> None:
    tested, listed = cases_with_tests(), listed_cases()
    assert len(core) > 150
    assert sorted(core - tested.keys() - listed.keys()) == []
    assert sorted(tested.keys() & listed.keys()) == []  # tested: not also excused
    assert sorted(listed.keys() - core) == []  # no stale entries
    assert all(len(reason) > 20 for reason in listed.values())


def test_tests_name_cases_that_exist(core: set[str]) -> None:
    text = CASES.read_text(encoding="utf-8")
    known = set(re.findall(r"TC_[A-Z]_\d+", text))
    assert sorted(cases_with_tests().keys() - known) == []
