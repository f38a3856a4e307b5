"""Fixtures of the OCPP integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pki import leaf, root


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    csms_root, root_cert, root_key = root(tmp_path, "csms-root")
    _, other_cert, other_key = root(tmp_path, "stranger-root")
    station_root, st_cert, st_key = root(tmp_path, "station-root")
    return {
        "root": csms_root,
        "server": leaf(
            tmp_path,
            "server",
            (root_cert, root_key),
            common_name="127.0.0.1",
            server=True,
            ip="127.0.0.1",
        ),
        "wrong_host": leaf(
            tmp_path, "wrong", (root_cert, root_key), common_name="csms.example.net", server=True
        ),
        "untrusted": leaf(
            tmp_path,
            "untrusted",
            (other_cert, other_key),
            common_name="127.0.0.1",
            server=True,
            ip="127.0.0.1",
        ),
        "station_root": station_root,
        "station": leaf(tmp_path, "station", (st_cert, st_key), common_name="CS001", server=False),
    }
