"""Suite-wide test setup: which tests must run alone when the suite runs on several
workers (pytest-xdist). `scripts/test` runs everything else with `-n auto` and then
these, marked `serial`, one after the other on one worker."""

from __future__ import annotations

import pytest

# Test modules (paths under tests/) that must not run beside other tests: fixed network
# namespace names, or real-time limits and throughput figures that a second busy worker
# on a 2-core machine would break.
SERIAL = (
    "integration/iso15118/test_harness.py",  # the harness's v2g-* namespaces, 60 s sessions
    "integration/test_slac_pev.py",  # the SLAC harness's slt-* namespaces, a 10 s limit
    "reliability/",  # bus floods: messages per second
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath / "tests"
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if any(where.startswith(prefix) for prefix in SERIAL):
            item.add_marker(pytest.mark.serial)
