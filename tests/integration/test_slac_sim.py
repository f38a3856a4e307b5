"""SLAC on the simulated board: the service, the CS and the simulated EV and modem."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.support.station import EVSE_ID, running_station, station_config

HLC = "hlc = true"


async def test_simulated_hlc_session_matches(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, evse=HLC, sim="ev_hlc = true")
    async with running_station(cfg) as st:
        st.ev.plug_in()
        pwm = await st.wait_for(lambda m: m.name == "cp_pwm" and m.type == "request")
        assert pwm.data == {
            "evse_id": EVSE_ID,
            "hlc": True,
            "error_state": False,
            "fault_state": False,
        }
        await st.wait_state("B2")
        assert st.board.evse(1).out.pwm_duty == 5.0
        matching = await st.wait_for(lambda m: m.name == "slac_status")
        assert matching.data["status"] == "matching" and matching.topic == "josev/cs"
        assert matching.data["run_id"] == "0x02000000AA010001"
        matched = await st.wait_for(
            lambda m: m.name == "slac_status" and m.data["status"] == "matched"
        )
        assert matched.data["run_id"] == "0x02000000AA010001"
        line = st.board.evse(1).powerline
        # the EVSE reports the match on sending CM_SLAC_MATCH.CNF; the car takes it a
        # frame later
        async with asyncio.timeout(5):
            while not line.pev.matched:  # noqa: ASYNC110 - the sim PEV has no event
                await asyncio.sleep(0.01)
        assert line.pev.nmk == line.evse_nmk
        st.ev.unplug()
        await st.wait_for(lambda m: m.name == "slac_status" and m.data["status"] == "unmatched")


async def test_attenuation_out_of_range_is_refused_then_basic_charging(tmp_path: Path) -> None:
    cfg = station_config(
        tmp_path, evse=HLC, sim="ev_hlc = true", extra="[slac]\ninit_timeout_s = 1"
    )
    async with running_station(cfg) as st:
        for service in st.slac:  # type: ignore[attr-defined]
            service._s = dataclasses.replace(service._s, step_ef_s=0.05)
        st.ev.powerline.pev.attenuation_db = 60  # above the EV's 40 dB limit: it refuses
        st.ev.plug_in()
        await st.wait_for(
            lambda m: m.name == "slac_status" and m.data["status"] == "basic_charging", timeout_s=15
        )
        statuses = [m.data["status"] for m in st.messages if m.name == "slac_status"]
        assert statuses.count("failed") == 3  # first try + C_sequ_retry (2) retries
        assert statuses[-1] == "basic_charging" and "matched" not in statuses
        assert cp_states(st).count("F") == 2  # one E/F toggle before each retry
        await st.wait_state("C2")
        closed = await st.wait_for(
            lambda m: m.name == "cs_contactor_status" and m.data["status"] == "closed"
        )
        assert closed is not None and not st.ev.powerline.pev.matched


async def test_lost_sounds_still_match(tmp_path: Path) -> None:
    cfg = station_config(tmp_path, evse=HLC, sim="ev_hlc = true")
    async with running_station(cfg) as st:
        st.ev.powerline.pev.lose_sounds = 2
        st.ev.plug_in()
        await st.wait_for(lambda m: m.name == "slac_status" and m.data["status"] == "matched")


def cp_states(st: object) -> list[str]:
    return [m.data["state"] for m in st.messages if m.name == "cp_status"]  # type: ignore[attr-defined]


async def matched_then_toggled(st: Any, back: dict[str, object]) -> int:
    """The car matched, then another service (as the SECC does after a failed session)
    puts the CP in F and brings it back with the cp_pwm fields `back`; returns the index
    of the first message after the match."""
    from charger.bus import messages

    st.ev.plug_in()
    await st.wait_for(lambda m: m.name == "slac_status" and m.data["status"] == "matched")
    mark = len(st.messages)
    pwm: dict[str, Any] = {"evse_id": EVSE_ID, "hlc": False, "error_state": False}
    await st.bus.request(messages.CP_PWM_REQUEST.make({**pwm, "current": 0.0, "fault_state": True}))
    await st.wait_state("F", after=mark)
    await st.bus.request(messages.CP_PWM_REQUEST.make({**pwm, "fault_state": False, **back}))
    return mark


async def test_an_ef_toggle_by_another_service_starts_slac_again(tmp_path: Path) -> None:
    """ISO 15118-3: after the SECC's E/F toggle (its error handling) the car matches
    anew when 5 % returns; SLAC does not stay on the old match."""
    cfg = station_config(tmp_path, evse=HLC, sim="ev_hlc = true")
    async with running_station(cfg) as st:
        mark = await matched_then_toggled(st, {"hlc": True})
        statuses = [
            (
                await st.wait_for(
                    lambda m, s=s: m.name == "slac_status" and m.data["status"] == s, after=mark
                )
            ).data["status"]
            for s in ("unmatched", "matching", "matched")
        ]
        assert statuses == ["unmatched", "matching", "matched"]


async def test_after_an_ef_toggle_the_toggler_keeps_the_duty_cycle(tmp_path: Path) -> None:
    """The SECC's last E/F toggle ends with the nominal duty cycle (ISO 15118-3: basic
    charging after its retries): SLAC is ready for the car again but does not ask for
    5 %, which would take the car's PWM away."""
    cfg = station_config(tmp_path, evse=HLC, sim="ev_hlc = true")
    async with running_station(cfg) as st:
        mark = await matched_then_toggled(st, {"current": 16.0})
        # the car charges at the nominal duty cycle: by then anything SLAC started on
        # the return to B has long had its turn
        await st.wait_state("C2", after=mark)
        after = st.messages[mark:]
        assert not [m for m in after if m.name == "cp_pwm" and m.data.get("hlc") is True]
        assert st.board.evse(1).out.pwm_duty == pytest.approx(16 / 0.6, abs=0.01)  # Table A.7
