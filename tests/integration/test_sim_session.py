"""`charger sim` as a subprocess against a real mosquitto: sessions and faults, seen from
the broker as Josev (or any tool on the bus) sees them."""

from __future__ import annotations

from collections.abc import Callable

from rig.processes import EVSE_ID, Broker, Charger
from tests.support.probe import probe_on


def states(probe: object, after: int = 0) -> list[str]:
    return [
        m["data"]["state"]
        for t, m in probe.messages[after:]  # type: ignore[attr-defined]
        if m.get("name") == "cp_status"
    ]


async def test_basic_ac_session(broker: Broker, start_charger: Callable[..., Charger]) -> None:
    start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        limits = await probe.request("cs_status_and_limits", {})
        assert limits["data"]["evses"][0]["status_code"] == "evse_ready"
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="C2")
        await probe.wait_message("cs_contactor_status", status="closed")
        meter = await probe.wait_for(
            lambda t, m: (
                m.get("name") == "meter_values" and m["data"]["total_active_energy_imported"] > 0
            )
        )
        assert meter["data"]["current"]["l1"] == 16.0
        await probe.sim("stop_charging")
        await probe.wait_message("cp_status", state="B2")
        await probe.wait_message("cs_contactor_status", status="opened")
        state = await probe.sim("unplug")
        assert state["state"]["energy_import_wh"] > 0
        await probe.wait_message("cp_status", state="A1")
        assert states(probe) == ["B1", "B2", "C2", "B2", "A1"]
        names = probe.names(topic="cs/josev")
        auth = names.index("authorization.request")
        assert names.index("cs_contactor_status.update") > auth  # closed only once authorized
        opened = max(i for i, n in enumerate(names) if n == "cs_contactor_status.update")
        left_c = [i for i, n in enumerate(names) if n == "cp_status.update"][3]
        assert opened < left_c  # contactor opened before C -> B was even reported


async def test_faults(broker: Broker, start_charger: Callable[..., Charger]) -> None:
    charger = start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        # diode short: F and a notify_event
        await probe.sim("fault", fault="diode_short")
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="F")
        await probe.wait_message("notify_event", tech_code="diode_fault")
        await probe.sim("fault", fault="diode_short", on=False)
        await probe.wait_message("cp_status", state="C2")  # retried after the hold time

        # RCD trip while charging: F at once, rcd_error reported, no restart until reset
        mark = probe.mark()
        await probe.sim("fault", fault="rcd_trip")
        await probe.wait_message("cp_status", after=mark, state="F")
        await probe.wait_message("cs_contactor_status", after=mark, status="opened")
        limits = await probe.wait_message("cs_status_and_limits", after=mark)
        assert limits["data"]["evses"][0]["ac"]["rcd_error"] is True
        await probe.sim("fault", fault="rcd_trip", on=False)
        await probe.sim("rcd_reset")
        await probe.wait_message("cp_status", after=mark, state="C2")

        # CP short to PE: state E, contactor open
        mark = probe.mark()
        await probe.sim("fault", fault="cp_short")
        await probe.wait_message("cp_status", after=mark, state="E")
        await probe.wait_message("notify_event", after=mark, tech_code="cp_short_to_ground")
        await probe.sim("fault", fault="cp_short", on=False)
        await probe.wait_message("cp_status", after=mark, state="C2")

        # EV ignoring a lower duty: stopped after the 5 s of IEC 61851-1
        mark = probe.mark()
        await probe.sim("fault", fault="ev_ignore_reduction")
        reply = await probe.request(
            "cp_pwm",
            {
                "evse_id": EVSE_ID,
                "hlc": False,
                "current": 8.0,
                "error_state": False,
                "fault_state": False,
            },
        )
        assert reply["data"]["status"] == "valid"
        note = await probe.wait_message(
            "notify_event", after=mark, tech_code="ev_ignored_current_reduction"
        )
        assert "lowered the limit to 8 A" in note["data"]["tech_info"]
        await probe.wait_message("cs_contactor_status", after=mark, status="opened")
        await probe.sim("fault", fault="ev_ignore_reduction", on=False)
        await probe.sim("unplug")
        await probe.wait_message("cp_status", after=mark, state="A1")

        # welded contactor: error reported, connector stays locked
        mark = probe.mark()
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", after=mark, state="C2")
        await probe.sim("fault", fault="contactor_welded")
        await probe.sim("stop_charging")
        await probe.wait_message("cs_contactor_status", after=mark, status="error")
        await probe.wait_message("cp_status", after=mark, state="F")
        state = await probe.sim("unplug")
        assert state["state"]["lock_locked"] is True
    assert charger.alive()


async def test_lock_jam_keeps_the_contactor_open(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    start_charger(broker.port)
    async with probe_on(broker.port) as probe:
        await probe.sim("fault", fault="lock_jam")
        await probe.sim("plug_in")
        note = await probe.wait_message("notify_event", tech_code="connector_lock_failure")
        assert note["data"]["evse_id"] == EVSE_ID
        state = await probe.sim("state")
        assert state["state"]["contactor_closed"] is False and state["state"]["ev"]["state"] == "C"


async def test_allow_list_by_rfid(broker: Broker, start_charger: Callable[..., Charger]) -> None:
    start_charger(broker.port, extra='[authorization]\nmode = "allow_list"\ntokens = ["04A1B2"]')
    async with probe_on(broker.port) as probe:
        await probe.sim("plug_in")
        await probe.wait_message("cp_status", state="B1")
        await probe.sim("present_token", token="FFFFFF")
        await probe.wait_message("authorization", status="rejected")
        await probe.sim("present_token", token="04A1B2")
        request = await probe.wait_message("authorization", id_token="04A1B2")
        assert request["data"]["token_type"] == "ISO14443"
        await probe.wait_message("cp_status", state="C2")
        mark = probe.mark()
        await probe.sim("present_token", token="04A1B2")
        await probe.wait_message("stop_charging", after=mark, evse_id=EVSE_ID)
        await probe.wait_message("cs_contactor_status", after=mark, status="opened")


async def test_simulated_hlc_session_reports_slac_matched(
    broker: Broker, start_charger: Callable[..., Charger]
) -> None:
    start_charger(broker.port, extra="ev_hlc = true", evse="hlc = true")  # extra: in [sim]
    async with probe_on(broker.port) as probe:
        await probe.sim("plug_in")
        pwm = await probe.wait_message("cp_pwm", hlc=True)
        assert pwm["type"] == "request"
        await probe.wait_message("slac_status", status="matching")
        matched = await probe.wait_message("slac_status", status="matched")
        assert matched["data"]["evse_id"] == EVSE_ID
        state = await probe.sim("state")
        assert state["state"]["slac"]["matched"] is True
        assert state["state"]["pilot"]["duty_percent"] == 5.0
