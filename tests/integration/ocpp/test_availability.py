"""The AvailabilityState of connectors, EVSEs and the station in the device model (the
OCA G and B reset cases run on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call

from charger.protocols.ocpp.settings import Connector
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import EVSE_ID, station
from tests.support.ocpp_steps import PLUG, UNPLUG, booted, play_cs, step


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
