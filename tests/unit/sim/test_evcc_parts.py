"""The pieces around the EVCC cores: the battery model, the car's options as `set_ev`
takes them, the board's car under its EVCC, and the SDP datagrams of the EV's side."""

from __future__ import annotations

import tomllib

import pytest

from charger import config
from charger.cs.pwm import duty_for_current
from charger.hal.interfaces import SteadyLevel
from charger.protocols.iso15118 import sdp
from charger.protocols.iso15118.sap import V2gProtocol
from charger.protocols.iso15118.v2gtp import V2gtpError
from charger.sim.board import create_board
from charger.sim.evcc import battery
from charger.sim.evcc.car import car_settings
from charger.sim.evcc.client import Link
from charger.sim.evcc.options import HlcCar


def test_the_charging_curve_tapers_above_80_percent() -> None:
    assert battery.allowed_current_a(0.0, 200.0) == 200.0
    assert battery.allowed_current_a(80.0, 200.0) == 200.0
    assert battery.allowed_current_a(90.0, 200.0) == pytest.approx(110.0)
    assert battery.allowed_current_a(100.0, 200.0) == pytest.approx(20.0)


def test_time_to_a_state_of_charge() -> None:
    assert battery.seconds_to(40.0, 50.0, 60000.0, 60000.0) == pytest.approx(360.0)
    assert battery.seconds_to(50.0, 40.0, 60000.0, 0.0) == 0.0
    assert battery.seconds_to(40.0, 50.0, 60000.0, 0.0) is None


def test_the_model_battery_is_the_boards(tmp_path: object) -> None:
    cfg = _config('kind = "dc"\nhlc = true')
    dc = create_board(cfg.evses, cfg.sim).evse(1).dc
    assert dc is not None
    for soc in (0.0, 40.0, 100.0):
        assert battery.Battery(60000.0, soc).ocv_v() == pytest.approx(dc.ocv_v(soc))
    full = battery.Battery(100.0, 99.0)
    full.store(5.0)
    assert full.soc_percent == 100.0


def test_set_ev_options() -> None:
    car = HlcCar()
    car.update(
        {
            "protocol": "din",
            "energy": "dc",
            "target_soc_percent": 80,
            "departure_time_s": 3600,
            "misbehave": ["late", "bad_exi", "late"],
            "paused": True,
            "retries": 5,
            "retry_pause_s": 0.5,
        }
    )
    assert (car.retries, car.retry_pause_s) == (5, 0.5)
    assert (HlcCar().retries, HlcCar().retry_pause_s) == (2, 4.0)  # C_sequ_retry, T_step_EF
    assert (car.protocol, car.energy, car.target_soc_percent) == ("din", "dc", 80.0)
    assert car.departure_time_s == 3600 and car.paused
    assert car.misbehave == ("late", "bad_exi")
    car.update({"misbehave": "wrong_sequence"})
    assert car.misbehave == ("wrong_sequence",)
    for payload, error in [
        ({"protocol": "iso20"}, "'protocol' must be one of iso2, din"),
        ({"energy": "ac"}, "DIN SPEC 70121 is DC only"),
        ({"target_soc_percent": 0}, "'target_soc_percent' must be within 1-100"),
        ({"departure_time_s": -1}, "'departure_time_s' must be an integer"),
        ({"misbehave": ["rude"]}, "unknown misbehaviour 'rude'"),
        ({"misbehave": 3}, "'misbehave' must be a list of names"),
        ({"paused": "yes"}, "'paused' must be true or false"),
        ({"retries": -1}, "'retries' must be an integer within 0-100"),
        ({"retries": True}, "'retries' must be an integer within 0-100"),
        ({"retry_pause_s": "1"}, "'retry_pause_s' must be within 0-3600"),
    ]:
        with pytest.raises(ValueError, match=error):
            car.update(payload)


def _config(evse: str = "hlc = true", sim: str = "") -> config.Config:
    text = f"""
[[evse]]
id = 1
evse_id = "DE*TST*E0001"
max_current_a = 32
{evse}
[sim]
ev_hlc = true
ev_reaction_s = 0
{sim}
"""
    return config.parse(tomllib.loads(text), "test")


def test_sim_settings_become_the_cars() -> None:
    cfg = _config(
        sim='ev_protocol = "din"\nev_target_soc_percent = 90\nev_misbehave = ["late"]\n'
        "ev_retries = 5\nev_retry_pause_s = 1.5",
        evse='kind = "dc"\nhlc = true',
    )
    sim = create_board(cfg.evses, cfg.sim).evse(1)
    settings = car_settings(sim)
    assert settings.protocol is V2gProtocol.DIN_SPEC_70121 and settings.dc
    assert settings.target_soc_percent == 90.0 and settings.misbehave == ("late",)
    assert settings.evcc_id == sim.powerline.pev.mac
    assert (sim.ev.evcc.retries, sim.ev.evcc.retry_pause_s) == (5, 1.5)
    with pytest.raises(config.ConfigError, match="ev_misbehave"):
        _config(sim='ev_misbehave = ["rude"]')
    with pytest.raises(config.ConfigError, match="ev_energy"):
        _config(sim='ev_protocol = "din"\nev_energy = "ac"')


async def test_the_evcc_drives_the_cars_pilot_at_5_percent_only() -> None:
    cfg = _config()
    board = create_board(cfg.evses, cfg.sim)
    sim = board.evse(1)
    state = board.command({"cmd": "set_ev", "protocol": "iso2", "target_soc_percent": 80})
    assert state["evcc"]["target_soc_percent"] == 80.0 and state["evcc"]["pilot"] is None
    sim.ev.evcc.attached = True
    sim.plug_in()
    sim.set_pwm(5.0)
    sim.hlc_drive("C", 10.0)
    assert sim.ev.s2_state == "C" and sim.ev.current_a == 10.0  # at once, no PWM reaction
    sim.hlc_drive("B")
    assert sim.ev.s2_state == "B"
    # ISO 15118-3's fallback: at a nominal duty cycle the car charges as IEC 61851 has it
    sim.set_pwm(duty_for_current(16.0))
    await _settled()
    assert sim.ev.s2_state == "C" and sim.ev.current_a == 16.0
    sim.set_steady(SteadyLevel.PLUS_12)
    await _settled()
    assert sim.ev.s2_state == "B"


async def test_a_dc_car_without_its_evcc_closes_s2_at_5_percent_as_before() -> None:
    cfg = _config('kind = "dc"\nhlc = true')
    sim = create_board(cfg.evses, cfg.sim).evse(1)
    sim.plug_in()
    sim.set_pwm(5.0)
    await _settled()
    assert sim.ev.s2_state == "C"
    sim.ev.evcc.attached = True
    sim.hlc_drive("B")
    assert sim.ev.s2_state == "B"


async def _settled() -> None:
    import asyncio

    for _ in range(3):
        await asyncio.sleep(0)


def test_sdp_datagrams_of_the_ev() -> None:
    assert sdp.request(sdp.Security.NONE) == bytes.fromhex("01fe9000000000021000")
    answer = sdp.response("fe80::ff:fe00:5e01", 50000, sdp.Security.TLS)
    parsed = sdp.parse_response(answer)
    assert parsed == sdp.SdpResponse(
        "fe80::ff:fe00:5e01", 50000, sdp.Security.TLS, sdp.Transport.TCP
    )
    assert sdp.parse_request(sdp.request(sdp.Security.TLS)).security is sdp.Security.TLS
    with pytest.raises(V2gtpError, match="payload type 0x9000 is not allowed"):
        sdp.parse_response(sdp.request(sdp.Security.NONE))
    with pytest.raises(V2gtpError, match="security 0x55"):
        sdp.parse_response(answer[:-2] + b"\x55\x00")


def test_the_loopback_link() -> None:
    assert sdp.link_local_address("lo") == "::1"
    assert Link.loopback(50001) == Link("lo", "::1", 50001)
    assert Link("eth1") == Link("eth1", "ff02::1", 15118)
