"""The security log (A04) on disk: one key per event, the newest MAX_ENTRIES kept in
order across a restart, the log of earlier builds (one list under one key) still read;
and which kinds the CSMS hears of."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from charger.protocols.ocpp import security_log
from charger.protocols.ocpp.security_log import MAX_ENTRIES, SecurityLog, notified
from charger.runtime.store import Store


class CountingStore(Store):
    """A Store that remembers every key and value written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[tuple[str, Any]] = []

    def put_sync(self, key: str, value: Any) -> None:
        self.writes.append((key, value))
        super().put_sync(key, value)


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "ocpp-dm.db"


def stamp(i: int) -> str:
    return f"2025-01-01T00:00:00.{i:03d}Z#{i}"


async def test_recording_an_event_writes_that_entry_only(path: Path) -> None:
    store = CountingStore(path)
    log = SecurityLog(store)
    for i in range(3):
        await log.record("StartupOfTheDevice", stamp(i), "PowerUp")
    store.writes.clear()
    await log.record("InvalidCsmsCertificate", stamp(3), "x" * 300)
    assert store.writes == [
        (
            "ocpp_security_log/0003",
            {
                "seq": 3,
                "type": "InvalidCsmsCertificate",
                "timestamp": stamp(3),
                "techInfo": "x" * 255,
            },
        )
    ]
    store.close()


async def test_1001_events_keep_the_newest_1000_in_order_across_a_restart(path: Path) -> None:
    store = CountingStore(path)
    log = SecurityLog(store)
    for i in range(MAX_ENTRIES + 1):
        await log.record("ResetOrReboot", stamp(i))
    expected = [{"type": "ResetOrReboot", "timestamp": stamp(i)} for i in range(1, 1001)]
    assert await log.entries() == expected
    assert len(store.writes) == MAX_ENTRIES + 1  # one write per event
    assert len(store.items_sync("ocpp_security_log/")) == MAX_ENTRIES
    store.close()

    again = Store(path)
    restarted = SecurityLog(again)
    assert await restarted.entries() == expected
    await restarted.record("FirmwareUpdated", stamp(1001))  # sequence numbers go on
    assert await restarted.entries() == [
        *expected[1:],
        {"type": "FirmwareUpdated", "timestamp": stamp(1001)},
    ]
    again.close()
    assert await SecurityLog(Store(path)).entries() == await restarted.entries()


async def test_the_log_of_earlier_builds_is_read_until_new_events_fill_the_log(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security_log, "MAX_ENTRIES", 4)
    old = [{"type": "ResetOrReboot", "timestamp": stamp(i)} for i in range(3)]
    store = CountingStore(path)
    store.put_sync("ocpp_security_log", old)  # as an earlier build left it
    log = SecurityLog(store)
    assert await log.entries() == old
    new = [{"type": "StartupOfTheDevice", "timestamp": stamp(10 + i)} for i in range(4)]
    await log.record("StartupOfTheDevice", stamp(10))
    await log.record("StartupOfTheDevice", stamp(11))
    assert await log.entries() == old[1:] + new[:2]
    store.close()

    store = CountingStore(path)
    log = SecurityLog(store)
    assert await log.entries() == old[1:] + new[:2]  # the same after a restart
    await log.record("StartupOfTheDevice", stamp(12))
    assert store.writes == [("ocpp_security_log/0002", {"seq": 2, **new[2]})]
    await log.record("StartupOfTheDevice", stamp(13))  # the new ones fill the log
    assert store.get_sync("ocpp_security_log") == []
    assert await log.entries() == new
    store.close()
    assert await SecurityLog(Store(path)).entries() == new


def test_the_csms_hears_of_the_critical_and_the_requested_events_only() -> None:
    heard = {
        kind: notified(kind)
        for kind in [
            "StartupOfTheDevice",
            "ResetOrReboot",
            "FirmwareUpdated",
            "SettingSystemTime",
            "StateDatabaseRecovered",  # the firmware's own
            "InvalidCsmsCertificate",
            "InvalidTLSVersion",
            "InvalidFirmwareSignature",
            "InvalidFirmwareSigningCertificate",
            "FailedToAuthenticateAtCsms",
            "CsmsFailedToAuthenticate",
            "ReconfigurationOfSecurityParameters",
            "InvalidMessages",
            "InvalidChargingStationCertificate",
            "InvalidTLSCipherSuite",
        ]
    }
    assert [kind for kind, yes in heard.items() if not yes] == [
        "FailedToAuthenticateAtCsms",
        "CsmsFailedToAuthenticate",
        "ReconfigurationOfSecurityParameters",
        "InvalidMessages",
        "InvalidChargingStationCertificate",
        "InvalidTLSCipherSuite",
    ]
