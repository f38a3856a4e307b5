"""What OCPP tests do with an in-process station (`rig.ocpp_station`): play the CS step by
step on its bus, configure it as the CSMS or locally, authorize, and read what the CSMS got."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.bus import api
from charger.bus.api import Message
from charger.protocols.ocpp.auth_cache import AuthCache
from charger.runtime.store import Store
from rig.csms import CsmsState
from rig.ocpp_station import EVSE_ID, Station

# ---------------------------------------------------------------- the CS, step by step

PLUG = [("cp_status", "B1")]
OFFER = [("cp_status", "B2")]  # the CS turns the PWM on
CHARGE = [("cs_contactor_status", "closed"), ("cp_status", "C2")]
EV_PAUSES = [("cp_status", "B2")]
CS_STOPS = [("cp_status", "C1"), ("cs_contactor_status", "opened"), ("cp_status", "B1")]
UNPLUG = [("cs_contactor_status", "opened"), ("cp_status", "A1")]


def cs(st: Station, name: str, **data: Any) -> None:
    st.bus.publish(api.update(name, "cs/josev", {"evse_id": EVSE_ID, **data}))


async def step(st: Station, facts: list[tuple[str, str]]) -> None:
    """One step of the CS: its reports back to back, then a moment to settle."""
    for name, value in facts:
        if name == "cp_status":
            cs(st, name, connector_id=1, state=value)
        else:
            cs(st, name, status=value)
    await asyncio.sleep(0.02)


def meter(st: Station, energy_wh: float, evse_id: str = EVSE_ID) -> None:
    """A meter_values update from the CS: 230 V and 16 A on three phases."""
    cs(
        st,
        "meter_values",
        evse_id=evse_id,
        timestamp="2026-11-22T03:00:00Z",
        voltage={"l1": 230, "l2": 230, "l3": 230},
        current={"l1": 16, "l2": 16, "l3": 16},
        power_factor=1,
        frequency=50,
        total_active_energy_imported=energy_wh,
        total_reactive_energy_imported=0,
    )


def play_cs(st: Station, answers: dict[str, dict[str, Any]]) -> list[Message]:
    """Answers the client's requests on josev/cs; returns what it was asked."""
    asked: list[Message] = []

    def answer(message: Message) -> None:
        if message.type == "request" and message.name in answers:
            asked.append(message)
            st.bus.publish(message.reply(answers[message.name]))

    st.bus.subscribe_all(answer, topic="josev/cs")
    return asked


# ---------------------------------------------------------------- configuration


async def set_variables(csms: Any, **values: str) -> None:
    """The "Before: Configuration State", as the CSMS sets it: TxCtrlr__TxStartPoint=..."""
    data = [
        {
            "component": {"name": key.split("__")[0]},
            "variable": {"name": key.split("__")[1]},
            "attribute_value": value,
        }
        for key, value in values.items()
    ]
    reply = await csms.call(call.SetVariables(set_variable_data=data))
    assert [r["attribute_status"] for r in reply.set_variable_result] == ["Accepted"] * len(data)


async def booted(state: CsmsState, st: Station, **variables: str) -> Any:
    await state.wait_for("StatusNotification")
    csms = state.stations[0]
    if variables:
        await set_variables(csms, **variables)
    return csms


def configure(st: Station, **values: str) -> None:
    """The "Before: Configuration State" of a test case."""
    client: Any = st.client  # type: ignore[attr-defined]
    for key, value in values.items():
        component, variable = key.split("__")
        client.dm.assign(component, variable, value)


# ---------------------------------------------------------------- authorization

ALICE = {"idToken": "A11CE0A1", "type": "ISO14443"}


async def authorize(st: Station, token: str = "A11CE0A1") -> str:
    reply = await st.bus.request(
        api.request(
            "authorization",
            "cs/josev",
            {"evse_id": EVSE_ID, "id_token": token, "token_type": "ISO14443"},
        ),
        5,
    )
    return str(reply.data["status"])


async def cached(status: str, **info: Any) -> AuthCache:
    cache = AuthCache(Store(Path(tempfile.mkdtemp()) / "cache.db"))
    await cache.update(ALICE, {"status": status, **info})
    return cache


# ---------------------------------------------------------------- what the CSMS got


def tx_events(state: CsmsState) -> list[dict[str, Any]]:
    return [p for a, p in state.received if a == "TransactionEvent"]


def events(state: CsmsState) -> list[tuple[str, str, int, str]]:
    return [
        (p["event_type"], p["trigger_reason"], p["seq_no"], p["transaction_info"]["charging_state"])
        for a, p in state.received
        if a == "TransactionEvent"
    ]


async def wait_ended(state: CsmsState) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while not any(p["event_type"] == "Ended" for p in tx_events(state)):
            state.changed.clear()
            await state.changed.wait()
    return tx_events(state)[-1]


def queue_empty(client: Any) -> Callable[[], Awaitable[bool]]:
    async def empty() -> bool:
        return not await client._outbox.pending()

    return empty
