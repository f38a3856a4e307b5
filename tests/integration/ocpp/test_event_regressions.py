"""Regressions found against an independent CSMS (OCPP issue, defects 3, 4 and 5), on the
whole firmware (`charger sim`, its CS controller, the simulated car, a CSMS on loopback).

3. NotifyEvent eventId started again at 1 after every restart, so a CSMS keying events by
   (station, eventId) dropped the repeats.
4. The first periodic meter value of a transaction came too early: the TxUpdatedInterval
   timer kept its phase from the previous transaction.
5. ClockCtrlr.DateTime came with six fractional digits from the machine's clock in
   GetVariables and as an empty string in GetBaseReport."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.v201 import call

from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.processes import Broker, Charger
from tests.support.polling import eventually
from tests.support.probe import probe_on

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z")


def when(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))


def tx_events(state: CsmsState) -> list[dict[str, Any]]:
    return [p for a, p in state.received if a == "TransactionEvent"]


async def one_session(state: CsmsState, port: int) -> None:
    """Plug in, charge until two periodic values came, unplug."""
    async with probe_on(port) as probe:
        before = len(tx_events(state))
        await probe.sim("plug_in")
        await eventually(
            lambda: (
                sum(e["trigger_reason"] == "MeterValuePeriodic" for e in tx_events(state)[before:])
                >= 2
            )
        )
        await probe.sim("unplug")
        await eventually(lambda: tx_events(state)[-1]["event_type"] == "Ended")


async def test_event_ids_stay_unique_and_periodic_values_count_from_each_start(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state, port=free_port()) as url:
        tail = f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n'
        first = start_charger(broker.port, tail=tail)
        await state.wait_for("NotifyEvent")
        reply = await state.stations[0].call(
            call.SetVariables(
                set_variable_data=[
                    {
                        "attribute_value": "1",
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                    }
                ]
            )
        )
        assert reply.set_variable_result[0]["attribute_status"] == "Accepted"
        await one_session(state, broker.port)
        await one_session(state, broker.port)  # a second transaction in the same run
        first.stop()
        notified = state.actions().count("NotifyEvent")
        start_charger(broker.port, tail=tail)  # the same state directory: a restart
        await state.wait_for("NotifyEvent", count=notified + 1)
        await one_session(state, broker.port)
    ids = [e["event_id"] for a, p in state.received if a == "NotifyEvent" for e in p["event_data"]]
    assert len(ids) >= 6 and len(ids) == len(set(ids)), ids  # defect 3
    # defect 4: in every transaction the first periodic value comes a whole interval in
    by_tx: dict[str, list[dict[str, Any]]] = {}
    for e in tx_events(state):
        by_tx.setdefault(e["transaction_info"]["transaction_id"], []).append(e)
    assert len(by_tx) == 3
    for events in by_tx.values():
        started = next(e for e in events if e["event_type"] == "Started")
        periodic = next(e for e in events if e["trigger_reason"] == "MeterValuePeriodic")
        assert (when(periodic) - when(started)).total_seconds() >= 1.0


async def test_clock_date_time_is_the_stations_time_in_one_format(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url:
        start_charger(broker.port, tail=f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n')
        await state.wait_for("StatusNotification")
        csms = state.stations[0]
        got = await csms.call(
            call.GetVariables(
                get_variable_data=[
                    {"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}}
                ]
            )
        )
        value = got.get_variable_result[0]["attribute_value"]
        assert STAMP.fullmatch(value), value
        await csms.call(call.GetBaseReport(request_id=5, report_base="FullInventory"))
        await eventually(
            lambda: any(
                a == "NotifyReport" and not p["tbc"] and p["request_id"] == 5
                for a, p in state.received
            )
        )
        [reported] = [
            r["variable_attribute"][0]["value"]
            for a, p in state.received
            if a == "NotifyReport"
            for r in p["report_data"]
            if r["variable"]["name"] == "DateTime"
        ]
        assert STAMP.fullmatch(reported), reported
