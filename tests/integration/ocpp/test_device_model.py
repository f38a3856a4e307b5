"""The device model through GetVariables, SetVariables and GetReport (the Core B cases run
on the OCTT rig, tests/integration/oca/)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.v201 import call

from charger.protocols.ocpp.settings import build_device_model
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.ocpp_station import settings, station
from tests.support.ocpp_steps import booted


def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}, **extra}


async def get(csms: Any, *items: dict[str, Any]) -> list[dict[str, Any]]:
    reply = await csms.call(call.GetVariables(get_variable_data=list(items)), suppress=False)
    return list(reply.get_variable_result)


async def test_too_many_items_is_an_occurrence_constraint_violation() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url):
        await state.wait_for("StatusNotification")
        with pytest.raises(OCPPError) as info:
            await get(state.stations[0], *[item("OCPPCommCtrlr", "HeartbeatInterval")] * 21)
        assert type(info.value).__name__ == "OccurrenceConstraintViolationError"


async def report_of(state: CsmsState, request_id: int) -> list[dict[str, Any]]:
    """The report data of one request, once its last page (tbc false) has arrived."""

    def pages() -> list[dict[str, Any]]:
        return [
            p for a, p in state.received if a == "NotifyReport" and p["request_id"] == request_id
        ]

    while not pages() or pages()[-1]["tbc"]:
        await state.wait_for("NotifyReport", count=state.actions().count("NotifyReport") + 1)
    return [entry for page in pages() for entry in page["report_data"]]


def named(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["component"]["name"], e["variable"]["name"]) for e in entries}


async def test_TC_B_16_B_17_B_18_CS_custom_reports() -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        # B_16: components with Enabled = true, all their variables
        reply = await csms.call(call.GetReport(request_id=21, component_criteria=["Enabled"]))
        assert reply.status == "Accepted"
        enabled = named(await report_of(state, 21))
        assert ("AuthCacheCtrlr", "LifeTime") in enabled
        assert ("LocalAuthListCtrlr", "Entries") in enabled
        assert not any(c == "OCPPCommCtrlr" for c, _ in enabled)
        # B_17: one variable of one EVSE
        evse_state = {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "AvailabilityState"},
        }
        reply = await csms.call(call.GetReport(request_id=22, component_variable=[evse_state]))
        assert reply.status == "Accepted"
        (entry,) = await report_of(state, 22)
        assert entry["component"] == {"name": "EVSE", "evse": {"id": 1}}
        assert entry["variable_attribute"][0]["value"] == "Available"
        # B_18: both filters; an EVSE is Available but has no Problem
        both = call.GetReport(
            request_id=23, component_criteria=["Available"], component_variable=[evse_state]
        )
        assert (await csms.call(both)).status == "Accepted"
        assert named(await report_of(state, 23)) == {("EVSE", "AvailabilityState")}
        none = call.GetReport(
            request_id=24, component_criteria=["Problem"], component_variable=[evse_state]
        )
        assert (await csms.call(none)).status == "EmptyResultSet"


async def test_set_values_survive_a_restart() -> None:
    path = Path(tempfile.mkdtemp()) / "dm.db"
    model = build_device_model(settings("ws://x"), Store(path))
    await model.load()
    result = await model.set(item("OCPPCommCtrlr", "OfflineThreshold", attributeValue="90"))
    assert result["attributeStatus"] == "Accepted"
    again = build_device_model(settings("ws://x"), Store(path))
    assert again.value("OCPPCommCtrlr", "OfflineThreshold") == "60"  # before loading
    await again.load()
    assert again.value("OCPPCommCtrlr", "OfflineThreshold") == "90"
