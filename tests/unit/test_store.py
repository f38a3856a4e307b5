"""The state store: private files whatever the umask, a corrupt file moved aside and
replaced, a read-only directory named in the error (reliability issue, defects 3 and 7)."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from charger.protocols.ocpp.outbox import Outbox
from charger.runtime.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_state_dir_and_databases_are_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = Store(state / "charger.db")
    store.put_sync("k", 1)
    outbox = Outbox(state / "ocpp.db")
    assert mode(state) == 0o700
    files = sorted(p.name for p in state.iterdir())
    assert "charger.db" in files and "charger.db-wal" in files and "ocpp.db" in files
    assert {p.name: mode(p) for p in state.iterdir()} == {name: 0o600 for name in files}
    store.close()
    outbox.close()


def test_an_existing_open_directory_is_made_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    Store(state / "charger.db").close()
    assert mode(state) == 0o700


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"this is no SQLite file at all" * 100),
        lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 84),  # a torn header
    ],
)
def test_a_corrupt_database_is_moved_aside_and_started_afresh(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "charger.db"
    store = Store(path)
    store.put_sync("available/1", False)
    store.close()
    for leftover in tmp_path.glob("charger.db-*"):
        leftover.unlink()
    damage(path)  # type: ignore[operator]
    store = Store(path)
    assert store.get_sync("available/1", True) is True  # defaults again
    store.put_sync("k", "v")
    assert store.get_sync("k") == "v"
    store.close()
    moved = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(moved) == 1 and moved[0].startswith("charger.db.corrupt-")
    record = next(r for r in caplog.records if r.getMessage() == "state_database_corrupt")
    assert record.kv["path"] == str(path)  # type: ignore[attr-defined]


def test_a_read_only_state_directory_is_named_in_the_error(tmp_path: Path) -> None:
    """A read-only file system (root writes into any read-only directory): a tmpfs
    mounted read-only in a private mount namespace; unprivileged, a 0555 directory."""
    state = tmp_path / "state"
    state.mkdir()
    script = (
        "from pathlib import Path; from charger.runtime.store import Store; "
        f"Store(Path({str(state)!r}) / 'charger.db')"
    )
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        mount = f"mount -t tmpfs -o ro none {state} && exec " + shlex.join(command)
        command = ["unshare", "--mount", "sh", "-c", mount]
    else:
        state.chmod(0o555)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert f"StoreError: {state}/charger.db: cannot open the state database" in done.stderr


def test_a_state_path_that_is_no_directory_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the directory should be")
    with pytest.raises(StoreError, match=f"{tmp_path}/state/charger.db: cannot open"):
        Store(tmp_path / "state" / "charger.db")
