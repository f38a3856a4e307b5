"""Firmware updates on the whole firmware (OCA block L): `charger sim` as a subprocess with
OCPP to the test CSMS, the firmware served by a real HTTP server on 127.0.0.1, RAUC
bundles built and signed with Debian's `rauc` in the test and checked by the simulated
RAUC with `rauc info`/`rauc extract`. The reboot is the real one of the sim: the process
re-executes itself and the simulated bootloader picks the slot.

Every TC_L case of the Core profile is here or in docs/ocpp-oca.md with its reason."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.processes import Broker, Charger
from tests.support.firmware import (
    FileServer,
    Manufacturer,
    Party,
    build_bundle,
    file_server,
    manufacturer,
    rauc_available,
    sign_file,
)
from tests.support.polling import eventually
from tests.support.probe import probe_on

pytestmark = pytest.mark.skipif(not rauc_available(), reason="rauc and mksquashfs are needed")

UPDATE_TIMEOUT_S = 60.0
SECOND_EVSE = """
[[evse]]
id = 2
evse_id = "DE*INT*E0002"
max_current_a = 32
"""


@dataclass
class Rig:
    tmp: Path
    maker: Manufacturer
    server: FileServer
    bundle: Path  # signed by the manufacturer's signer, for this simulated station

    @property
    def www(self) -> Path:
        return self.server.root

    def rauc_status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(
            (self.tmp / "state" / "sim-rauc" / "status.json").read_text()
        )
        return status

    def fault(self, **faults: Any) -> None:
        (self.tmp / "state" / "sim-rauc").mkdir(parents=True, exist_ok=True)
        (self.tmp / "state" / "sim-rauc" / "faults.json").write_text(json.dumps(faults))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    maker = manufacturer(tmp_path / "pki")
    www = tmp_path / "www"
    www.mkdir()
    bundle = build_bundle(www, maker.signer, version="2.0.0", name="charger-2.0.0")
    with file_server(www) as server:
        yield Rig(tmp_path, maker, server, bundle)


def iso(offset_s: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def update_request(
    rig: Rig,
    request_id: int,
    *,
    bundle: Path | None = None,
    signer: Party | None = None,
    signed_by: Party | None = None,
    location: str | None = None,
    retrieve_s: float = -7200,
    install_s: float | None = -7200,
    secure: bool = True,
    **extra: Any,
) -> call.UpdateFirmware:
    """UpdateFirmware as OCTT sends it: retrieve and install 2 hours ago by default."""
    bundle = bundle or rig.bundle
    signer = signer or rig.maker.signer
    firmware: dict[str, Any] = {
        "location": location or rig.server.url(bundle.name),
        "retrieve_date_time": iso(retrieve_s),
    }
    if install_s is not None:
        firmware["install_date_time"] = iso(install_s)
    if secure:
        firmware["signing_certificate"] = signer.pem
        firmware["signature"] = sign_file(bundle, (signed_by or signer).key)
    return call.UpdateFirmware(request_id=request_id, firmware=firmware, **extra)


def statuses(state: CsmsState, request_id: int | None = None) -> list[str]:
    return [
        p["status"]
        for a, p in state.received
        if a == "FirmwareStatusNotification"
        and (request_id is None or p.get("request_id") == request_id)
    ]


def security_events(state: CsmsState) -> list[str]:
    return [p["type"] for a, p in state.received if a == "SecurityEventNotification"]


def connector_statuses(state: CsmsState, evse: int = 1) -> list[str]:
    return [
        p["connector_status"]
        for a, p in state.received
        if a == "StatusNotification" and p["evse_id"] == evse
    ]


def transaction_ended(state: CsmsState, evse: int) -> bool:
    """A transaction at `evse` has ended (its TransactionEvent Ended has come)."""
    events = [p for a, p in state.received if a == "TransactionEvent"]
    started = {
        p["transaction_info"]["transaction_id"]
        for p in events
        if p["event_type"] == "Started" and p.get("evse", {}).get("id") == evse
    }
    return any(
        p["event_type"] == "Ended" and p["transaction_info"]["transaction_id"] in started
        for p in events
    )


async def until_status(state: CsmsState, status: str, count: int = 1) -> None:
    await eventually(lambda: statuses(state).count(status) >= count, UPDATE_TIMEOUT_S)


@dataclass
class Up:
    """The test CSMS and `charger sim` connected to it, booted."""

    state: CsmsState
    charger: Charger

    @property
    def station(self) -> Any:
        """The CSMS's handler of the station's latest connection."""
        return self.state.stations[-1]


Connect = Callable[..., contextlib.AbstractAsyncContextManager[Up]]


@pytest.fixture
def connect(broker: Broker, start_charger: Callable[..., Charger], rig: Rig) -> Connect:
    """`async with connect(more=..., evses=...) as up`: the CSMS, then the charger with
    OCPP to it and the rig's manufacturer root (`more`: lines of [firmware], `evses`:
    more [[evse]] tables), until its first BootNotification."""

    @contextlib.asynccontextmanager
    async def up(more: str = "", evses: str = "") -> AsyncIterator[Up]:
        state = CsmsState(interval=300)
        async with ocpp_csms(state) as url:
            tail = f"""
{evses}
[ocpp]
enabled = true
csms_url = "{url}"
[firmware]
manufacturer_root_file = "{rig.maker.root.cert_file}"
health_timeout_s = 5
{more}
"""
            charger = start_charger(broker.port, tail=tail)
            await state.wait_for("BootNotification")
            yield Up(state, charger)

    return up


async def nothing_downloaded(up: Up, rig: Rig, refused: int) -> None:
    """A refused update started nothing: a later one is Accepted, not AcceptedCanceled
    (no update was under way, L01.FR.24), and the file server's only request is the later
    one's, for a file it does not have (a quick DownloadFailed)."""
    later = update_request(rig, refused + 1000, location=rig.server.url("later.raucb"), retries=0)
    assert (await up.station.call(later)).status == "Accepted"
    await until_status(up.state, "DownloadFailed")
    assert statuses(up.state, refused) == []
    assert statuses(up.state) == ["Downloading", "DownloadFailed"]
    assert rig.server.requests == ["/later.raucb"]


async def still_scheduled(up: Up) -> None:
    """The update waits: a status triggered now (L01.FR.26: the last one) is
    InstallScheduled, and nothing was installed."""
    sent = len(statuses(up.state))
    trigger = call.TriggerMessage(requested_message="FirmwareStatusNotification")
    assert (await up.station.call(trigger)).status == "Accepted"
    await eventually(lambda: len(statuses(up.state)) > sent, 10)
    assert statuses(up.state)[sent:] == ["InstallScheduled"]


async def updated(state: CsmsState, charger: Charger, request_id: int) -> None:
    """The reboot into the new slot and its report: Installed, then FirmwareUpdated."""
    await until_status(state, "InstallRebooting")
    charger.wait_log(" ready ", count=2, timeout_s=UPDATE_TIMEOUT_S)
    boot = await state.wait_for("BootNotification", count=2, timeout_s=UPDATE_TIMEOUT_S)
    assert boot["reason"] == "FirmwareUpdate"
    await until_status(state, "Installed")
    await eventually(lambda: "FirmwareUpdated" in security_events(state), UPDATE_TIMEOUT_S)
    assert set(statuses(state)) == set(statuses(state, request_id))  # L01.FR.10


# ---------------------------------------------------------------------- happy flows


async def test_TC_L_01_CS_secure_update_installed_after_the_reboot(
    connect: Connect, rig: Rig
) -> None:
    async with connect() as up:
        state, charger = up.state, up.charger
        await state.wait_for("StatusNotification")
        reply = await up.station.call(update_request(rig, 101))
        assert reply.status == "Accepted"
        await updated(state, charger, 101)
        assert statuses(state) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        # the connectors were Unavailable from before Installing until the new firmware
        # was judged fit, then Available again (steps 9 and 16 of the case)
        await eventually(lambda: connector_statuses(state)[-1] == "Available", 10)
        assert "Unavailable" in connector_statuses(state)
        slots = rig.rauc_status()
        assert slots["booted"] == "B" and slots["slots"]["B"]["status"] == "good"
        assert slots["slots"]["B"]["version"] == "2.0.0"
        # L01.FR.25: after Installed a triggered status is Idle
        trigger = call.TriggerMessage(requested_message="FirmwareStatusNotification")
        assert (await up.station.call(trigger)).status == "Accepted"
        await eventually(lambda: statuses(state)[-1] == "Idle", 10)
        assert [a for a, _ in state.received].count("FirmwareStatusNotification") == 7
    assert charger.alive()  # the same process, re-executed in place


async def test_TC_L_02_CS_install_scheduled_for_later(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state, charger = up.state, up.charger
        reply = await up.station.call(update_request(rig, 102, install_s=4))
        assert reply.status == "Accepted"
        await until_status(state, "InstallScheduled")
        assert statuses(state) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "InstallScheduled",
        ]
        await updated(state, charger, 102)
        assert statuses(state)[4:] == ["Installing", "InstallRebooting", "Installed"]


async def test_TC_L_03_CS_download_scheduled_for_later(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state, charger = up.state, up.charger
        request = update_request(rig, 103, retrieve_s=3)
        reply = await up.station.call(request)
        assert reply.status == "Accepted"
        await until_status(state, "DownloadScheduled")
        await updated(state, charger, 103)
        # not before retrieveDateTime: the server saw the first request after it
        retrieve = datetime.fromisoformat(request.firmware["retrieve_date_time"])
        assert rig.server.request_times[0] >= retrieve.timestamp()
        assert statuses(state) == [
            "DownloadScheduled",
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]


# ---------------------------------------------------------------------- refusals, failures


async def test_TC_L_05_CS_invalid_signing_certificate(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state = up.state
        # trusted by nobody here: another manufacturer's signer
        request = update_request(rig, 105, signer=rig.maker.stranger)
        reply = await up.station.call(request)
        assert reply.status == "InvalidCertificate"
        event = await state.wait_for("SecurityEventNotification", count=2)  # after Startup
        assert event["type"] == "InvalidFirmwareSigningCertificate"
        assert "not issued by a manufacturer root" in event["tech_info"]
        await nothing_downloaded(up, rig, 105)


async def test_TC_L_06_CS_invalid_signature(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state = up.state
        # a real signature, by another key than the certificate's
        request = update_request(rig, 106, signed_by=rig.maker.stranger)
        assert (await up.station.call(request)).status == "Accepted"
        await until_status(state, "InvalidSignature")
        assert statuses(state, 106) == ["Downloading", "Downloaded", "InvalidSignature"]
        await eventually(lambda: "InvalidFirmwareSignature" in security_events(state), 10)
        assert rig.rauc_status()["booted"] == "A"
        assert not (rig.tmp / "state" / "sim-rauc" / "slot-B").exists()  # never installed
        assert list((rig.tmp / "state" / "firmware").iterdir()) == []  # file removed


async def test_TC_L_07_CS_download_failed_after_the_retries(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state = up.state
        missing = rig.server.url(rig.bundle.name) + "_does.not.exist"
        request = update_request(rig, 107, location=missing, retries=2, retry_interval=1)
        assert (await up.station.call(request)).status == "Accepted"
        await until_status(state, "DownloadFailed")
        assert statuses(state, 107) == ["Downloading", "DownloadFailed"]
        assert len(rig.server.requests) == 3  # the first attempt and two retries


async def test_download_retries_succeed_when_the_server_recovers(
    connect: Connect, rig: Rig
) -> None:
    async with connect() as up:
        state, charger = up.state, up.charger
        rig.server.fail_first = 2
        request = update_request(rig, 108, retries=3, retry_interval=1)
        assert (await up.station.call(request)).status == "Accepted"
        await updated(state, charger, 108)
        assert len(rig.server.requests) == 3
        assert statuses(state)[:2] == ["Downloading", "Downloaded"]


@pytest.mark.parametrize("failure", ["verification", "installation"])
async def test_TC_L_08_CS_install_verification_or_installation_failed(
    connect: Connect, rig: Rig, failure: str
) -> None:
    if failure == "verification":
        # OCPP's signature holds, but RAUC's keyring does not know the bundle's signer
        bundle = build_bundle(rig.www, rig.maker.stranger, name="rogue")
        expected = "InstallVerificationFailed"
    else:
        bundle = rig.bundle
        rig.fault(install="fail")  # writing the slot fails
        expected = "InstallationFailed"
    async with connect() as up:
        state, charger = up.state, up.charger
        request = update_request(rig, 109, bundle=bundle)
        assert (await up.station.call(request)).status == "Accepted"
        await until_status(state, expected)
        assert statuses(state, 109) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            expected,
        ]
        # the connectors take drivers again, no reboot happened
        await eventually(lambda: connector_statuses(state)[-1] == "Available", 10)
        assert "Unavailable" in connector_statuses(state)
        assert charger.log().count(" ready ") == 1
        assert rig.rauc_status()["booted"] == "A"


async def test_TC_L_10_CS_a_new_update_cancels_the_download(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state, charger = up.state, up.charger
        rig.server.trickle_s = 0.05  # a slow download, long enough to interrupt
        assert (await up.station.call(update_request(rig, 110))).status == "Accepted"
        await until_status(state, "Downloading")
        rig.server.trickle_s = 0.0
        reply = await up.station.call(update_request(rig, 111))
        assert reply.status == "AcceptedCanceled"  # L01.FR.24
        await updated(state, charger, 111)
        assert statuses(state, 110) == ["Downloading"]
        assert statuses(state, 111) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]


async def test_TC_L_18_CS_an_update_without_certificate_and_signature_is_rejected(
    connect: Connect, rig: Rig
) -> None:
    async with connect() as up:
        reply = await up.station.call(update_request(rig, 118, secure=False))
        assert reply.status == "Rejected"
        await nothing_downloaded(up, rig, 118)
        # L03/L04 are a Local Controller's: the station does not publish firmware
        publish = call.PublishFirmware(
            location=rig.server.url(rig.bundle.name), checksum="0" * 32, request_id=1
        )
        with pytest.raises(NotSupportedError):
            await up.station.call(publish, suppress=False)
        unpublish = call.UnpublishFirmware(checksum="0" * 32)
        with pytest.raises(NotSupportedError):
            await up.station.call(unpublish, suppress=False)


async def test_non_secure_update_where_the_station_allows_it(connect: Connect, rig: Rig) -> None:
    """L02, with [firmware] allow_unsigned: no SignatureVerified; RAUC still checks."""
    async with connect(more="allow_unsigned = true") as up:
        state, charger = up.state, up.charger
        reply = await up.station.call(update_request(rig, 120, secure=False))
        assert reply.status == "Accepted"
        await updated(state, charger, 120)
        assert statuses(state) == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]


# ---------------------------------------------------------------------- transactions


@pytest.mark.parametrize(
    "allow_new_sessions",
    [
        pytest.param(True, id="TC_L_14_new_sessions_while_waiting"),
        pytest.param(False, id="TC_L_15_free_evses_unavailable_while_waiting"),
    ],
)
async def test_TC_L_14_L_15_CS_installation_waits_for_the_transactions(
    connect: Connect, broker: Broker, rig: Rig, allow_new_sessions: bool
) -> None:
    """L01.FR.06/.07/.33/.34: downloaded and verified during the transaction, installed
    once every transaction has ended; meanwhile (AllowNewSessionsPendingFirmwareUpdate
    false) the free EVSE is Unavailable at once and the busy one as its transaction ends,
    or (true) the free EVSE takes a new session."""
    async with connect(evses=SECOND_EVSE) as up:
        state, charger = up.state, up.charger
        if allow_new_sessions:
            variable = {
                "attribute_value": "true",
                "component": {"name": "ChargingStation"},
                "variable": {"name": "AllowNewSessionsPendingFirmwareUpdate"},
            }
            reply = await up.station.call(call.SetVariables(set_variable_data=[variable]))
            assert reply.set_variable_result[0]["attribute_status"] == "Accepted"
        async with probe_on(broker.port) as probe:
            await probe.sim("plug_in")  # EVSE 1: a transaction (TxStartPoint EVConnected)
            await state.wait_for("TransactionEvent")
            reply = await up.station.call(update_request(rig, 114))
            assert reply.status == "Accepted"
            await until_status(state, "InstallScheduled")
            assert statuses(state) == [
                "Downloading",
                "Downloaded",
                "SignatureVerified",
                "InstallScheduled",
            ]
            if allow_new_sessions:
                await probe.sim("plug_in", evse=2)  # a new session is still possible
                await eventually(lambda: connector_statuses(state, 2)[-1] == "Occupied", 10)
                assert "Unavailable" not in connector_statuses(state, 2)  # never held
                await probe.sim("unplug", evse=2)  # its transaction ends, EVSE 1's goes on
                await eventually(lambda: transaction_ended(state, 2), 10)
            else:
                # the free EVSE is made Unavailable at once (L01.FR.07)
                await eventually(lambda: connector_statuses(state, 2)[-1] == "Unavailable", 10)
            await still_scheduled(up)
            await probe.sim("unplug")  # the last transaction ends
        await updated(state, charger, 114)
        # the triggered InstallScheduled (still_scheduled), then the installation
        assert statuses(state)[4:] == [
            "InstallScheduled",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        if not allow_new_sessions:
            # the busy EVSE went from Occupied straight to Unavailable, never Available
            after = connector_statuses(state, 1)
            occupied = after.index("Occupied")
            assert after[occupied + 1] == "Unavailable"


# ---------------------------------------------------------------------- the new firmware


async def test_new_firmware_that_fails_its_check_is_rolled_back(connect: Connect, rig: Rig) -> None:
    """The CSMS does not accept the new firmware's boot within health_timeout_s: its slot
    is marked bad, the station reboots into the old one, which reports the failure."""
    async with connect() as up:
        state, charger = up.state, up.charger
        assert (await up.station.call(update_request(rig, 130))).status == "Accepted"
        await until_status(state, "InstallRebooting")
        state.boot_status = "Rejected"  # the new firmware is never accepted
        charger.wait_log(" ready ", count=2, timeout_s=UPDATE_TIMEOUT_S)
        charger.wait_log("firmware_rollback", timeout_s=UPDATE_TIMEOUT_S)
        state.boot_status = "Accepted"  # the old firmware is
        charger.wait_log(" ready ", count=3, timeout_s=UPDATE_TIMEOUT_S)
        await until_status(state, "InstallationFailed")
        assert statuses(state, 130)[-2:] == ["InstallRebooting", "InstallationFailed"]
        assert "Installed" not in statuses(state)
        slots = rig.rauc_status()
        assert slots["booted"] == "A" and slots["slots"]["B"]["status"] == "bad"
        boots = [p["reason"] for a, p in state.received if a == "BootNotification"]
        assert boots[0] == "PowerUp" and set(boots[1:]) == {"FirmwareUpdate"}
        await eventually(lambda: connector_statuses(state)[-1] == "Available", 10)
        assert "FirmwareUpdated" not in security_events(state)


async def test_new_firmware_that_never_comes_up_is_reported_by_the_old_one(
    connect: Connect, rig: Rig
) -> None:
    """The bootloader gives up on the new slot (it never ran): the old firmware boots
    and reports InstallationFailed for the request."""
    rig.fault(bad_boot=True)
    async with connect() as up:
        state, charger = up.state, up.charger
        assert (await up.station.call(update_request(rig, 131))).status == "Accepted"
        await until_status(state, "InstallationFailed")
        assert statuses(state, 131)[-2:] == ["InstallRebooting", "InstallationFailed"]
        assert charger.log().count(" ready ") == 2
        assert rig.rauc_status()["booted"] == "A"
        boot = await state.wait_for("BootNotification", count=2)
        assert boot["reason"] == "FirmwareUpdate"


async def test_TC_F_19_CS_triggered_status_while_downloading(connect: Connect, rig: Rig) -> None:
    async with connect() as up:
        state = up.state
        rig.server.trickle_s = 0.05
        assert (await up.station.call(update_request(rig, 119))).status == "Accepted"
        await until_status(state, "Downloading")
        trigger = call.TriggerMessage(requested_message="FirmwareStatusNotification")
        assert (await up.station.call(trigger)).status == "Accepted"
        await until_status(state, "Downloading", count=2)  # L01.FR.26: the last status
        sent = [p for a, p in state.received if a == "FirmwareStatusNotification"]
        assert sent[-1] == {"status": "Downloading", "request_id": 119}
