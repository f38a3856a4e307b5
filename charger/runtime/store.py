"""Durable key-value store: SQLite (WAL, synchronous=FULL) with CBOR-encoded values.

A `put` returns only after the value is on disk, so whatever was acknowledged survives a
power cut. The SQLite calls run in a worker thread; the event loop never waits on fsync.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import cbor2


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite file for durable state: WAL, synchronous=FULL (a commit is on disk before
    it returns), autocommit unless a transaction is begun explicitly. Blocking: call it
    from a worker thread when the event loop is running."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


class Store:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_database(
            path, "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        )

    def get_sync(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else cbor2.loads(row[0])

    def put_sync(self, key: str, value: Any) -> None:
        blob = cbor2.dumps(value)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, blob))

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
