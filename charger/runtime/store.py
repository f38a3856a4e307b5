"""Durable key-value store: SQLite (WAL, synchronous=FULL) with CBOR-encoded values.

A `put` returns only after the value is on disk, so whatever was acknowledged survives a
power cut. The SQLite calls run in a worker thread; the event loop never waits on fsync.

The state directory and its files hold idTokens and credentials: the directory is 0700
and every database file 0600, whatever the umask. A database that fails SQLite's
integrity check at start is moved aside (`<name>.corrupt-<UTC time>`) and started
afresh, so a corrupt file degrades the station instead of stopping it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import cbor2

from charger.runtime.log import event

log = logging.getLogger(__name__)

DIR_MODE, FILE_MODE = 0o700, 0o600
WAL_LIMIT_BYTES = 512 * 1024
_COMPANIONS = ("", "-wal", "-shm", "-journal")


class StoreError(OSError):
    """The state database cannot be opened; str() names the file and the reason."""


def open_database(path: Path, schema: str) -> tuple[sqlite3.Connection, Path | None]:
    """A SQLite file for durable state: WAL, synchronous=FULL (a commit is on disk before
    it returns), autocommit unless a transaction is begun explicitly; and where a corrupt
    file was moved to, if it was. Blocking: call it from a worker thread when the event
    loop is running."""
    moved: Path | None = None
    try:
        private_directory(path.parent)
        db = _connect(path, schema)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _corrupt_message(str(exc)):
            raise StoreError(f"{path}: cannot open the state database: {exc}") from None
        moved = _move_aside(path)
        event(
            log,
            logging.ERROR,
            "state_database_corrupt",
            path=str(path),
            moved_to=str(moved),
            error=str(exc),
        )
        try:
            db = _connect(path, schema)
        except sqlite3.Error as again:
            raise StoreError(f"{path}: cannot create the state database: {again}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the state database: {exc.strerror}") from None
    return db, moved


def private_directory(folder: Path) -> None:
    """Makes `folder` (and its parents) exist, and `folder` itself 0700."""
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o777 != DIR_MODE:
        folder.chmod(DIR_MODE)


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE))  # created 0600, not per umask
    path.chmod(FILE_MODE)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # the WAL stays small: checkpointed every ~100 pages, truncated to 512 KiB after
        db.execute("PRAGMA wal_autocheckpoint=100")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    for suffix in _COMPANIONS[1:]:  # SQLite gives them the database's mode; make sure
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(FILE_MODE)
    return db


def _corrupt_message(text: str) -> bool:
    return any(s in text for s in ("not a database", "malformed", "corrupt", "integrity"))


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in _COMPANIONS:
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.replace(target.with_name(target.name + suffix))
    return target


class Store:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db, self.moved_aside = open_database(
            path, "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        )

    def get_sync(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else cbor2.loads(row[0])

    def put_sync(self, key: str, value: Any) -> None:
        blob = cbor2.dumps(value)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, blob)
                )
            except sqlite3.Error as exc:  # a full or failing disk: the caller decides
                raise StoreError(f"{key}: not stored: {exc}") from None

    def items_sync(self, prefix: str) -> dict[str, Any]:
        """Every key starting with `prefix` (one query), with its value."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {key: cbor2.loads(value) for key, value in rows}

    async def items(self, prefix: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.items_sync, prefix)

    async def get(self, key: str, default: Any = None) -> Any:
        return await asyncio.to_thread(self.get_sync, key, default)

    async def put(self, key: str, value: Any) -> None:
        await asyncio.to_thread(self.put_sync, key, value)

    def close(self) -> None:
        with self._lock:
            self._db.close()
