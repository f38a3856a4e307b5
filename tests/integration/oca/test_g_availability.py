"""OCA Part 6, block G (Availability), Core cases, on the whole firmware (`rig.octt`).

One test per case, its steps in order as comments. Cases that name "the other
connectors" run with two EVSEs of one connector each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rig.octt import Octt

AVAILABILITY_COMPONENTS = ("Connector", "EVSE", "ChargingStation")


async def change(
    octt: Octt, status: str, evse: int | None = None, connector: int | None = None
) -> str:
    payload: dict[str, Any] = {"operationalStatus": status}
    if evse is not None:
        payload["evse"] = {"id": evse, **({"connectorId": connector} if connector else {})}
    reply = await octt.call("ChangeAvailability", **payload)
    return str(reply["status"])


async def delta(octt: Octt, value: str, evse: int | None = None) -> dict[str, Any]:
    """The NotifyEvent of an AvailabilityState change (Delta) to `value`, of the
    Connector, its EVSE or the ChargingStation (the cases allow any of them)."""

    def fits(data: list[dict[str, Any]]) -> bool:
        event = data[0]
        component = event["component"]
        return (
            event["trigger"] == "Delta"
            and event["actualValue"] == value
            and event["variable"] == {"name": "AvailabilityState"}
            and component["name"] in AVAILABILITY_COMPONENTS
            and (evse is None or component.get("evse", {}).get("id", evse) == evse)
        )

    return await octt.expect("NotifyEvent", within_s=5, eventData=fits)


def statuses(octt: Octt) -> dict[tuple[int, int], str]:
    """The last status of each connector reported since the step's start."""
    return {
        (p["evseId"], p["connectorId"]): p["connectorStatus"]
        for p in octt.sent("StatusNotification")
    }


# ------------------------------------------------------------------ G01


async def test_TC_G_01_CS_connector_status_available_to_occupied(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1. Execute Reusable State EVConnectedPreSession: Occupied, its Delta, and the
        # TransactionEvent (TxStartPoint EVConnected)
        started = await octt.ev_connected_pre_session()
        assert started["eventType"] == "Started"
        assert started["evse"] == {"id": 1, "connectorId": 1}


async def test_TC_G_02_CS_connector_status_occupied_to_available(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EVConnectedPreSession
        await octt.ev_connected_pre_session()
        # Manual Action: disconnect; 3-4. Available with its Delta
        await octt.unplug()
        await octt.occupied(status="Available")


# ------------------------------------------------------------------ G03 EVSE


async def test_TC_G_03_CS_change_availability_evse_operative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # 1. Execute Reusable State Unavailable for the configured EVSE
        await octt.unavailable(evse=1)
        # post: a report for every connector of that EVSE, none for the other
        assert statuses(octt) == {(1, 1): "Unavailable"}


async def test_TC_G_04_CS_change_availability_evse_inoperative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: Memory State Unavailable for the configured EVSE
        await octt.unavailable(evse=1)
        # 1-2. ChangeAvailability Operative for it: Accepted
        assert await change(octt, "Operative", evse=1) == "Accepted"
        # 3-4. its connectors Available, with the Delta (EVSE or Connector, its evse.id)
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Available", evseId=1)
        await delta(octt, "Available", evse=1)
        assert statuses(octt) == {(1, 1): "Available"}


async def test_TC_G_09_CS_change_availability_evse_operative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. Operative while operative: Accepted
        assert await change(octt, "Operative", evse=1) == "Accepted"
        await octt.settle()
        assert statuses(octt) == {}  # nothing changed, nothing to report


async def test_TC_G_10_CS_change_availability_evse_inoperative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is Unavailable for the configured EVSE
        await octt.unavailable(evse=1)
        # 1-2. Inoperative again: Accepted
        assert await change(octt, "Inoperative", evse=1) == "Accepted"
        await octt.settle()
        assert set(statuses(octt).values()) <= {"Unavailable"}


async def test_TC_G_11_CS_change_availability_evse_with_ongoing_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        await octt.charging()
        # 1-2. ChangeAvailability Inoperative for the EVSE: Scheduled
        assert await change(octt, "Inoperative", evse=1) == "Scheduled"
        # (wait <Configured Transaction Duration>): charging goes on, nothing reported
        await octt.advance(60)
        assert octt.open_transactions() and statuses(octt) == {}
        # 3. Execute Reusable State StopAuthorized: the transaction ends (TxStopPoint
        # Authorized), so 4-5. the connector reports Unavailable with its Delta
        await octt.stop_authorized()
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=1)
        await delta(octt, "Unavailable", evse=1)
        assert "Available" not in statuses(octt).values()
        # 9. EVDisconnected: the connector stays Unavailable
        await octt.unplug()
        await octt.next_heartbeat()
        assert statuses(octt) in ({}, {(1, 1): "Unavailable"})


# ------------------------------------------------------------------ G04 station


async def test_TC_G_05_CS_change_availability_station_operative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # 1. Execute Reusable State Unavailable (the station): every connector reports
        await octt.unavailable()
        assert statuses(octt) == {(1, 1): "Unavailable", (2, 1): "Unavailable"}


async def test_TC_G_06_CS_change_availability_station_inoperative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is Unavailable
        await octt.unavailable()
        # 1-2. Operative: Accepted
        assert await change(octt, "Operative") == "Accepted"
        # 3-4. every connector Available, with its Delta
        for evse in (1, 2):
            await octt.expect(
                "StatusNotification", within_s=5, connectorStatus="Available", evseId=evse
            )
            await delta(octt, "Available", evse=evse)
        assert statuses(octt) == {(1, 1): "Available", (2, 1): "Available"}


async def test_TC_G_12_CS_change_availability_station_operative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. Operative while operative: Accepted
        assert await change(octt, "Operative") == "Accepted"


async def test_TC_G_13_CS_change_availability_station_inoperative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is Unavailable (the station)
        await octt.unavailable()
        # 1-2. Inoperative again: Accepted
        assert await change(octt, "Inoperative") == "Accepted"
        # 3-4. every connector's current state: Unavailable, with the AvailabilityState
        # event (the case names the ChargingStation component; the reusable state
        # Unavailable allows ChargingStation, EVSE or Connector)
        for evse in (1, 2):
            await octt.expect(
                "StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=evse
            )
        await delta(octt, "Unavailable")


async def test_TC_G_14_CS_change_availability_station_with_ongoing_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is EnergyTransferStarted (EVSE 1)
        await octt.charging()
        # 1-2. ChangeAvailability Inoperative (the station): Scheduled
        assert await change(octt, "Inoperative") == "Scheduled"
        # 3-4. the EVSEs without a transaction report Unavailable at once
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=2)
        assert (1, 1) not in statuses(octt)
        # (wait <Configured Transaction Duration>): EVSE 1 goes on charging
        await octt.advance(60)
        assert octt.open_transactions()
        # 5. Execute Reusable State StopAuthorized: it ends, so 6-7. Unavailable
        await octt.stop_authorized()
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=1)
        await delta(octt, "Unavailable", evse=1)
        assert "Available" not in statuses(octt).values()


async def test_a_station_wide_inoperative_takes_each_evse_as_its_transaction_ends(
    rig: Callable[..., Any],
) -> None:
    """G04 with two transactions: the EVSE whose transaction ends first becomes
    inoperative then, in the CS too (no new session there while the other charges)."""
    async with rig(evses=2) as octt:
        await octt.charging(1)
        await octt.charging(2, token="B0B0B0B1")
        assert await change(octt, "Inoperative") == "Scheduled"
        await octt.stop_authorized(1)
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=1)
        await octt.unplug(1)
        await octt.plug(1)
        await octt.present(evse=1)
        await octt.next_heartbeat()
        assert octt.sim(1).out.pwm_duty is None  # EVSE 1 offers nothing
        assert octt.open_transactions() and octt.sim(2).contactor_closed  # EVSE 2 charges on


@pytest.mark.parametrize(
    "target",
    [
        pytest.param({"evse": 1}, id="evse"),
        pytest.param({"evse": 1, "connector": 1}, id="connector"),
        pytest.param({}, id="station"),
    ],
)
async def test_an_operative_cancels_the_scheduled_inoperative(
    rig: Callable[..., Any], target: dict[str, int]
) -> None:
    """G03/G04: a later ChangeAvailability supersedes a scheduled one. Operative while the
    Inoperative waits for the transaction: Accepted, and the EVSE stays operative when the
    transaction ends (finding 19)."""
    async with rig() as octt:
        await octt.charging()
        assert await change(octt, "Inoperative", **target) == "Scheduled"
        assert await change(octt, "Operative", **target) == "Accepted"
        since = octt.mark()
        await octt.stop_authorized()
        # EVDisconnected: Available with its Delta, never Unavailable
        await octt.ev_disconnected()
        # and the CS is operative: a new session charges
        await octt.charging()
        await octt.next_heartbeat()
        reported = [p["connectorStatus"] for p in octt.sent("StatusNotification", after=since)]
        assert "Unavailable" not in reported and reported[-1] == "Occupied"


async def test_an_evse_operative_cancels_its_part_of_a_station_wide_inoperative(
    rig: Callable[..., Any],
) -> None:
    """G04 then G03: the station-wide Inoperative scheduled for both busy EVSEs; an
    Operative for EVSE 1 keeps it operative at its transaction's end, EVSE 2 still goes
    Unavailable at its own (finding 19)."""
    async with rig(evses=2) as octt:
        await octt.charging(1)
        await octt.charging(2, token="B0B0B0B1")
        assert await change(octt, "Inoperative") == "Scheduled"
        assert await change(octt, "Operative", evse=1) == "Accepted"
        since = octt.mark()
        await octt.stop_authorized(1)
        await octt.ev_disconnected(1)
        await octt.stop_authorized(2, token="B0B0B0B1")
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Unavailable", evseId=2)
        await octt.next_heartbeat()
        reported = [
            (p["evseId"], p["connectorStatus"])
            for p in octt.sent("StatusNotification", after=since)
        ]
        assert (1, "Unavailable") not in reported and reported[-1] == (2, "Unavailable")


# ------------------------------------------------------------------ G03 connector


async def test_TC_G_07_CS_change_availability_connector_operative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # 1. Execute Reusable State Unavailable for the configured connector
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Accepted"
        await octt.occupied(1, "Unavailable")
        assert statuses(octt) == {(1, 1): "Unavailable"}


async def test_TC_G_08_CS_change_availability_connector_inoperative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: Memory State Unavailable for the configured connector
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Accepted"
        await octt.occupied(1, "Unavailable")
        # 1-2. Operative for it: Accepted
        assert await change(octt, "Operative", evse=1, connector=1) == "Accepted"
        # 3-4. Available, evse and connector id, with its Delta
        await octt.occupied(1, "Available")


async def test_TC_G_15_CS_change_availability_connector_operative_to_operative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. Operative while operative: Accepted
        assert await change(octt, "Operative", evse=1, connector=1) == "Accepted"


async def test_TC_G_16_CS_change_availability_connector_inoperative_to_inoperative(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is Unavailable (the connector)
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Accepted"
        await octt.occupied(1, "Unavailable")
        # 1-2. Inoperative again: Accepted
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Accepted"


async def test_TC_G_17_CS_change_availability_connector_with_ongoing_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        await octt.charging()
        # 1-2. ChangeAvailability Inoperative for the connector: Scheduled
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Scheduled"
        await octt.advance(60)
        assert octt.open_transactions() and statuses(octt) == {}
        # 3. StopAuthorized ends it; 4-5. Unavailable, evse and connector id, its Delta
        await octt.stop_authorized()
        await octt.occupied(1, "Unavailable")
        assert "Available" not in statuses(octt).values()


# ------------------------------------------------------------------ persistence


async def test_TC_G_18_CS_change_availability_evse_persists_across_reboot(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # 1-2. ChangeAvailability Inoperative for the EVSE: Accepted
        assert await change(octt, "Inoperative", evse=1) == "Accepted"
        # 3-4. Unavailable for that EVSE (the other stays Available: nothing to report)
        await octt.occupied(1, "Unavailable")
        # 5. Execute Reusable State Booted (by ResetRequest)
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Accepted"
        await octt.expect("BootNotification", within_s=60)
        await octt.occupied(1, "Unavailable")
        await octt.occupied(2, "Available")
        assert statuses(octt) == {(1, 1): "Unavailable", (2, 1): "Available"}


async def test_TC_G_19_CS_change_availability_connector_persists_across_reboot(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is Unavailable for the configured connector
        assert await change(octt, "Inoperative", evse=1, connector=1) == "Accepted"
        await octt.occupied(1, "Unavailable")
        # 1. Execute Reusable State Booting: ResetRequest Immediate, Accepted
        reply = await octt.call("Reset", type="Immediate")
        assert reply["status"] == "Accepted"
        # 2-3. BootNotification; 4-5. that connector Unavailable, the others Available
        await octt.expect("BootNotification", within_s=60)
        await octt.occupied(1, "Unavailable")
        await octt.occupied(2, "Available")
        assert statuses(octt) == {(1, 1): "Unavailable", (2, 1): "Available"}
        # 6-7. the security event of the reboot
        await octt.expect("SecurityEventNotification", within_s=5, type="ResetOrReboot")


async def test_TC_G_21_CS_change_availability_station_persists_across_reboot(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: State is Unavailable (the station)
        await octt.unavailable()
        # 1. Execute Reusable State Booting: ResetRequest Immediate, Accepted
        reply = await octt.call("Reset", type="Immediate")
        assert reply["status"] == "Accepted"
        # 2-3. BootNotification; 4-5. every connector Unavailable with its Delta
        await octt.expect("BootNotification", within_s=60)
        for evse in (1, 2):
            await octt.occupied(evse, "Unavailable")
        assert statuses(octt) == {(1, 1): "Unavailable", (2, 1): "Unavailable"}
        # 6-7. the security event of the reboot
        await octt.expect("SecurityEventNotification", within_s=5, type="ResetOrReboot")
