"""The firmware update's states without sockets: the station, the session and the A/B
installer are stand-ins; the bus, the device model and the state store are real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from charger.bus import Bus
from charger.bus.api import Message
from charger.hal.firmware import InstallFailed, Progress, Slot
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.firmware import STATE_KEY, FirmwareOptions, FirmwareService
from charger.runtime.store import Store
from charger.runtime.tasks import TaskOwner
from tests.support.polling import eventually


@dataclass
class FakeStation:
    transactions: dict[int, str | None] = field(default_factory=lambda: {1: None, 2: None})
    available: dict[int, bool] = field(default_factory=lambda: {1: True, 2: True})
    scheduled: set[int] = field(default_factory=set)

    def evses(self) -> list[int]:
        return sorted(self.transactions)

    def evse_id(self, ocpp_evse_id: int) -> str | None:
        return f"DE*TST*E000{ocpp_evse_id}"

    def transaction_id(self, ocpp_evse_id: int) -> str | None:
        return self.transactions[ocpp_evse_id]

    def set_available(self, ocpp_evse_id: int, available: bool) -> None:
        self.available[ocpp_evse_id] = available

    def schedule_unavailable(self, ocpp_evse_ids: list[int]) -> None:
        self.scheduled.update(ocpp_evse_ids)

    def unschedule_unavailable(self, ocpp_evse_ids: list[int]) -> None:
        self.scheduled.difference_update(ocpp_evse_ids)


@dataclass
class FakeSession:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((action, payload))
        return {}

    async def call_quietly(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.call(action, payload)

    def statuses(self) -> list[str]:
        return [p["status"] for a, p in self.sent if a == "FirmwareStatusNotification"]


@dataclass
class FakeInstaller:
    """Stands in for RAUC (hardware, as far as this test is concerned)."""

    booted_slot: str = "A"
    fail: InstallFailed | None = None
    marks: list[str] = field(default_factory=list)
    reboots: int = 0

    async def install(self, bundle: Path, progress: Progress) -> str:
        progress(50, "Writing")
        if self.fail is not None:
            raise self.fail
        return "B"

    async def slots(self) -> list[Slot]:
        return []

    async def booted(self) -> str:
        return self.booted_slot

    async def mark_good(self) -> None:
        self.marks.append("good")

    async def mark_bad(self) -> None:
        self.marks.append("bad")

    async def reboot(self) -> None:
        self.reboots += 1

    async def close(self) -> None:
        return None


@dataclass
class Rig:
    service: FirmwareService
    station: FakeStation
    installer: FakeInstaller
    store: Store
    session: FakeSession
    online: list[FakeSession | None]
    security: list[tuple[str, str]]
    cs_requests: list[dict[str, Any]]
    dm: DeviceModel


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Any]:
    made: list[tuple[TaskOwner, Store]] = []

    async def build(
        health: str | None = None, installer: FakeInstaller | None = None, **saved: Any
    ) -> Rig:
        store = Store(tmp_path / "ocpp-dm.db")
        if saved:
            await store.put(STATE_KEY, saved)
        bus = Bus(request_timeout_s=1.0)
        cs_requests: list[dict[str, Any]] = []

        def answer(message: Message[Any]) -> None:
            if message.type == "request" and message.name == "change_availability":
                cs_requests.append(dict(message.data))
                bus.publish(message.reply({"status": "accepted"}))

        bus.subscribe_all(answer, topic="josev/cs")
        dm = DeviceModel.build({}, [(1, 1, "cType2", 3, 11000.0), (2, 1, "cType2", 3, 11000.0)])
        session = FakeSession()
        online: list[FakeSession | None] = [None]
        security: list[tuple[str, str]] = []

        async def security_event(kind: str, info: str) -> None:
            security.append((kind, info))

        async def check() -> str | None:
            return health

        tasks = TaskOwner("test")
        station, fake = FakeStation(), installer or FakeInstaller()
        service = FirmwareService(
            bus,
            station,
            dm,
            fake,
            FirmwareOptions(directory=tmp_path / "fw", firmware_version="2.0.0"),
            tasks,
            session=lambda: online[0],  # type: ignore[arg-type,return-value]
            now=lambda: datetime.now(UTC),
            security_event=security_event,
            health=check,
            store=store,
            call_timeout_s=1.0,
        )
        made.append((tasks, store))
        return Rig(service, station, fake, store, session, online, security, cs_requests, dm)

    yield build
    for tasks, store in made:
        await tasks.close()
        store.close()


def register(rig: Rig) -> None:
    rig.online[0] = rig.session
    rig.service.registered()


async def test_the_new_firmware_is_kept_after_its_check(make: Any) -> None:
    rig = await make(
        installer=FakeInstaller(booted_slot="B"),
        request_id=7,
        status="InstallRebooting",
        phase="activating",
        target="B",
        held=[1, 2],
    )
    await rig.service.restore()
    assert rig.service.rebooted_for_update  # BootNotification reason FirmwareUpdate
    assert rig.cs_requests == []  # held until judged
    register(rig)
    await eventually(lambda: "FirmwareUpdated" in [k for k, _ in rig.security])
    assert rig.installer.marks == ["good"]
    assert rig.session.statuses() == ["Installed"]
    assert rig.session.sent[0][1] == {"status": "Installed", "requestId": 7}
    await eventually(lambda: rig.station.available == {1: True, 2: True})
    assert [r["operational_status"] for r in rig.cs_requests] == ["operative", "operative"]
    assert (await rig.store.get(STATE_KEY))["phase"] == "idle"
    assert rig.dm.value("FirmwareCtrlr", "State") == "Installed"


async def test_a_failed_check_marks_the_slot_bad_and_reboots(make: Any) -> None:
    rig = await make(
        health="EVSE 1: the RCD is tripped",
        installer=FakeInstaller(booted_slot="B"),
        request_id=8,
        status="InstallRebooting",
        phase="activating",
        target="B",
        held=[1],
    )
    await rig.service.restore()
    register(rig)
    await eventually(lambda: rig.installer.reboots == 1)
    assert rig.installer.marks == ["bad"]
    assert "Installed" not in rig.session.statuses()
    assert rig.security == []
    assert (await rig.store.get(STATE_KEY))["phase"] == "rolling_back"
    # the old firmware, booted again, reports the failure for the same request
    old = await make(installer=FakeInstaller(booted_slot="A"))
    await old.service.restore()
    assert old.service.rebooted_for_update
    register(old)
    await eventually(lambda: old.session.statuses() == ["InstallationFailed"])
    assert old.session.sent[0][1]["requestId"] == 8
    assert old.installer.marks == ["good"]  # the old slot stays
    await eventually(lambda: old.station.available[1])


async def test_a_boot_the_csms_never_accepts_rolls_back(make: Any) -> None:
    rig = await make(
        installer=FakeInstaller(booted_slot="B"),
        request_id=9,
        status="InstallRebooting",
        phase="activating",
        target="B",
    )
    rig.service._o = FirmwareOptions(directory=None, health_timeout_s=0.2)
    await rig.service.restore()
    await eventually(lambda: rig.installer.reboots == 1, 5)
    assert rig.installer.marks == ["bad"]


async def test_an_update_a_restart_interrupted_is_reported_failed(make: Any) -> None:
    rig = await make(request_id=3, status="Downloading", phase="busy", held=[])
    await rig.service.restore()
    assert not rig.service.rebooted_for_update
    assert rig.session.sent == []  # offline: kept for the next registration
    register(rig)
    await eventually(lambda: rig.session.statuses() == ["DownloadFailed"])
    rig.service.trigger(rig.session)  # type: ignore[arg-type]
    await eventually(lambda: len(rig.session.sent) == 2)
    assert rig.session.sent[1][1] == {"status": "DownloadFailed", "requestId": 3}  # L01.FR.26


async def test_trigger_says_idle_before_any_update_and_after_installed(make: Any) -> None:
    rig = await make()
    rig.service.trigger(rig.session)  # type: ignore[arg-type]
    rig2 = await make(request_id=4, status="Installed", phase="idle")
    await rig2.service.restore()
    rig2.service.trigger(rig2.session)  # type: ignore[arg-type]
    await eventually(lambda: bool(rig.session.sent and rig2.session.sent))
    assert rig.session.sent == [("FirmwareStatusNotification", {"status": "Idle"})]
    assert rig2.session.sent == [("FirmwareStatusNotification", {"status": "Idle"})]


async def test_requests_that_cannot_be_taken(make: Any) -> None:
    rig = await make()
    rig.service._phase = "installing"  # RAUC is writing the slot
    firmware = {"location": "http://127.0.0.1:9/fw", "retrieveDateTime": "2026-01-01T00:00:00Z"}
    unsigned = await rig.service.update_firmware({"requestId": 6, "firmware": firmware})
    assert unsigned["status"] == "Rejected"  # L01.FR.27 while installing
    assert unsigned["statusInfo"]["reasonCode"] == "InstallInProgress"
    idle = await make()
    unsigned = await idle.service.update_firmware({"requestId": 6, "firmware": firmware})
    assert unsigned["status"] == "Rejected"  # TC_L_18
    assert unsigned["statusInfo"]["reasonCode"] == "UnsignedFirmware"
    bad = {**firmware, "signingCertificate": "not a certificate", "signature": "AAAA"}
    refused = await idle.service.update_firmware({"requestId": 7, "firmware": bad})
    assert refused["status"] == "InvalidCertificate"
    await eventually(lambda: [k for k, _ in idle.security] == ["InvalidFirmwareSigningCertificate"])


async def test_evses_are_held_free_at_once_and_busy_ones_when_their_transaction_ends(
    make: Any,
) -> None:
    rig = await make()
    rig.station.transactions[1] = "tx-1"
    await rig.service._hold([1, 2])
    assert rig.station.available == {1: True, 2: False}
    assert rig.station.scheduled == {1}
    rig.station.transactions[1] = None
    await rig.service._hold([1, 2])
    assert rig.station.available == {1: False, 2: False} and rig.station.scheduled == set()
    assert (await rig.store.get(STATE_KEY))["held"] == [1, 2]
    await rig.service._release()
    assert rig.station.available == {1: True, 2: True}
    assert [r["operational_status"] for r in rig.cs_requests] == [
        "inoperative",
        "inoperative",
        "operative",
        "operative",
    ]
    await asyncio.sleep(0)
