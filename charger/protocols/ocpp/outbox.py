"""Durable, ordered outbox for the OCPP messages that must survive a power cut.

TransactionEvent and SecurityEventNotification requests are committed to SQLite (WAL,
synchronous=FULL, CBOR payloads) before anything is sent; an entry is removed only when
the CSMS has answered it, so after a reconnect or a reboot the rest goes out again in
the original order. Open transactions (id, seqNo, EVSE, ...) are kept in the same file,
so seqNo stays continuous across reboots. SQLite runs in a worker thread.

A full disk must not lose the end of a transaction: a write that fails rolls back
completely (no half-open SQLite transaction) and raises `StorageFull`; before that the
outbox gives up the space it reserved at start (`<file>.reserve`) and tries once more,
so the events that end running transactions still fit. The caller retries later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from charger.runtime.log import event
from charger.runtime.store import open_database

log = logging.getLogger(__name__)

RESERVE_BYTES = 256 * 1024  # room for a few hundred TransactionEvents


class StorageFull(OSError):
    """A write did not reach the disk (full, or failing); nothing of it was kept."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    transaction_id TEXT PRIMARY KEY,
    evse_id INTEGER NOT NULL,
    state BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    action: str
    payload: dict[str, Any]
    attempts: int


class Outbox:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db, self.moved_aside = open_database(path, _SCHEMA)
        self._reserve = path.with_name(path.name + ".reserve")
        self.reserve_space()
        self.changed = asyncio.Event()

    def reserve_space(self) -> bool:
        """Sets disk space aside for a bad day (blocking); False when it cannot."""
        try:
            fd = os.open(self._reserve, os.O_CREAT | os.O_WRONLY, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._reserve.unlink()
            event(
                log,
                logging.WARNING,
                "outbox_reserve_failed",
                path=str(self._reserve),
                error=exc.strerror,
            )
            return False
        return True

    def _release_reserve(self) -> bool:
        try:
            self._reserve.unlink()
        except FileNotFoundError:
            return False
        event(log, logging.WARNING, "outbox_reserve_released", path=str(self._reserve))
        return True

    # ------------------------------------------------------------------ blocking core

    def _put(
        self,
        action: str,
        payload: dict[str, Any],
        transaction: tuple[str, int, dict[str, Any]] | None,
        forget: str | None,
    ) -> int:
        try:
            return self._put_once(action, payload, transaction, forget)
        except sqlite3.Error as exc:
            if not self._release_reserve():
                raise StorageFull(f"{self._reserve.parent}: {exc}") from None
        try:  # once more, in the space the reserve gave back
            return self._put_once(action, payload, transaction, forget)
        except sqlite3.Error as exc:
            raise StorageFull(f"{self._reserve.parent}: {exc}") from None

    def _put_once(
        self,
        action: str,
        payload: dict[str, Any],
        transaction: tuple[str, int, dict[str, Any]] | None,
        forget: str | None,
    ) -> int:
        with self._lock, self._rolled_back_on_error():
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute(
                "INSERT INTO outbox (action, payload, created) VALUES (?, ?, ?)",
                (action, cbor2.dumps(payload), time.time()),
            )
            if transaction is not None:  # the message and the state it implies, atomically
                tx_id, evse_id, state = transaction
                self._db.execute(
                    "INSERT OR REPLACE INTO transactions VALUES (?, ?, ?)",
                    (tx_id, evse_id, cbor2.dumps(state)),
                )
            if forget is not None:  # the Ended event and the end of the state, atomically
                self._db.execute("DELETE FROM transactions WHERE transaction_id = ?", (forget,))
            self._db.execute("COMMIT")
            return int(cursor.lastrowid or 0)

    @contextlib.contextmanager
    def _rolled_back_on_error(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _first(self) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, action, payload, attempts FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else Entry(row[0], row[1], cbor2.loads(row[2]), row[3])

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise StorageFull(f"{self._reserve.parent}: {exc}") from None

    def _all(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql).fetchall()

    # ------------------------------------------------------------------ async API

    async def put(
        self,
        action: str,
        payload: dict[str, Any],
        transaction: tuple[str, int, dict[str, Any]] | None = None,
        forget: str | None = None,
    ) -> int:
        """Commits a message, and the transaction state it implies, to disk at once."""
        seq = await asyncio.to_thread(self._put, action, payload, transaction, forget)
        self.changed.set()
        return seq

    async def first(self) -> Entry | None:
        return await asyncio.to_thread(self._first)

    async def ack(self, seq: int) -> None:
        await asyncio.to_thread(self._execute, "DELETE FROM outbox WHERE seq = ?", (seq,))

    async def attempted(self, seq: int) -> None:
        await asyncio.to_thread(
            self._execute, "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,)
        )

    async def pending(self) -> list[Entry]:
        rows = await asyncio.to_thread(
            self._all, "SELECT seq, action, payload, attempts FROM outbox ORDER BY seq"
        )
        return [Entry(r[0], r[1], cbor2.loads(r[2]), r[3]) for r in rows]

    async def transactions(self) -> dict[str, tuple[int, dict[str, Any]]]:
        rows = await asyncio.to_thread(
            self._all, "SELECT transaction_id, evse_id, state FROM transactions"
        )
        return {r[0]: (r[1], cbor2.loads(r[2])) for r in rows}

    async def save_transaction(self, transaction_id: str, state: dict[str, Any]) -> None:
        """Updates an open transaction's state (e.g. its last meter reading) on disk."""
        await asyncio.to_thread(
            self._execute,
            "UPDATE transactions SET state = ? WHERE transaction_id = ?",
            (cbor2.dumps(state), transaction_id),
        )

    async def forget_transaction(self, transaction_id: str) -> None:
        await asyncio.to_thread(
            self._execute, "DELETE FROM transactions WHERE transaction_id = ?", (transaction_id,)
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
