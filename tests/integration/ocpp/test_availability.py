"""ChangeAvailability around transactions and across reboots, and Reset of the station or
one EVSE (OCA G03/G04 cases TC_G_11/14/17/18/19/21, B11/B12 cases TC_B_22/25/26/27)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call

from charger.protocols.ocpp.settings import Connector
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, station
from tests.support.ocpp_steps import PLUG, UNPLUG, booted, play_cs, step
from tests.support.polling import eventually

TARGETS = {
    "station": None,
    "evse": {"id": 1},
    "connector": {"id": 1, "connector_id": 1},
}


def statuses(state: CsmsState) -> list[str]:
    return [p["connector_status"] for a, p in state.received if a == "StatusNotification"]


@pytest.mark.parametrize("target", ["evse", "station", "connector"])
async def test_TC_G_11_G_14_G_17_CS_inoperative_waits_for_the_transaction(target: str) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        asked = play_cs(st, {"change_availability": {"status": "accepted"}})
        await step(st, PLUG)
        await state.wait_for("TransactionEvent")
        reply = await csms.call(
            call.ChangeAvailability(operational_status="Inoperative", evse=TARGETS[target])
        )
        assert reply.status == "Scheduled" and asked == []
        assert statuses(state) == ["Available", "Occupied"]  # not while it runs
        await step(st, UNPLUG)
        await state.wait_for("TransactionEvent", count=2)
        await state.wait_for("StatusNotification", count=3)
        # straight to Unavailable when the transaction ends (OCPP issue, defect 6)
        await eventually(lambda: len(asked) == 1)
        assert statuses(state) == ["Available", "Occupied", "Unavailable"]
        assert len(asked) == 1 and asked[0].data["operational_status"] == "inoperative"


@pytest.mark.parametrize("target", ["evse", "connector", "station"])
async def test_TC_G_18_G_19_G_21_CS_inoperative_persists_across_a_reboot(target: str) -> None:
    store = Store(Path(tempfile.mkdtemp()) / "state.db")
    first = CsmsState(interval=300)
    async with ocpp_csms(first) as url, station(url, state_store=store) as st:
        csms = await booted(first, st)
        play_cs(st, {"change_availability": {"status": "accepted"}})
        reply = await csms.call(
            call.ChangeAvailability(operational_status="Inoperative", evse=TARGETS[target])
        )
        assert reply.status == "Accepted"
        await first.wait_for("StatusNotification", count=2)
    # power cycle: a new process with the same disk
    second = CsmsState(interval=300)
    async with ocpp_csms(second) as url, station(url, state_store=store):
        assert (await second.wait_for("BootNotification"))["reason"] == "PowerUp"
        status = await second.wait_for("StatusNotification")
        assert (status["evse_id"], status["connector_id"], status["connector_status"]) == (
            1,
            1,
            "Unavailable",
        )
        startup = await second.wait_for("SecurityEventNotification")
        assert startup["type"] == "StartupOfTheDevice"


async def availability_states(csms: Any) -> dict[str, str]:
    """The AvailabilityState of the station, EVSE 1, EVSE 2 and their connectors."""
    parts = {
        "station": {"name": "ChargingStation"},
        "evse1": {"name": "EVSE", "evse": {"id": 1}},
        "evse2": {"name": "EVSE", "evse": {"id": 2}},
        "connector1": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
        "connector2": {"name": "Connector", "evse": {"id": 2, "connector_id": 1}},
    }
    reply = await csms.call(
        call.GetVariables(
            get_variable_data=[
                {"component": c, "variable": {"name": "AvailabilityState"}} for c in parts.values()
            ]
        )
    )
    return {
        name: r["attribute_value"] for name, r in zip(parts, reply.get_variable_result, strict=True)
    }


async def test_availability_state_of_connectors_evses_and_the_station() -> None:
    second_evse = "DE*OCP*E0002"
    connectors = (Connector(EVSE_ID, 1, 1), Connector(second_evse, 2, 1))
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url, connectors=connectors) as st:
        csms = await booted(state, st)
        play_cs(st, {"change_availability": {"status": "accepted"}})
        assert set((await availability_states(csms)).values()) == {"Available"}
        await step(st, PLUG)  # EVSE 1
        await state.wait_for("StatusNotification", count=3)
        assert await availability_states(csms) == {
            "station": "Available",  # EVSE 2 is free
            "evse1": "Occupied",
            "evse2": "Available",
            "connector1": "Occupied",
            "connector2": "Available",
        }
        await csms.call(call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2}))
        await state.wait_for("StatusNotification", count=4)
        states = await availability_states(csms)
        assert (states["station"], states["evse2"], states["connector2"]) == (
            "Occupied",  # no EVSE is free for a new driver, one is in use
            "Unavailable",
            "Unavailable",
        )
        await step(st, UNPLUG)
        await csms.call(call.ChangeAvailability(operational_status="Inoperative"))
        await state.wait_for("StatusNotification", count=6)
        assert set((await availability_states(csms)).values()) == {"Unavailable"}
