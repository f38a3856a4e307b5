"""The simulated car's EVCC on real sockets.

- `charger sim` with `hlc = true`, in-process (`app.App` on a real broker): the car plugs
  in, SLAC matches, its EVCC finds our SECC by SDP on the loopback link and charges, AC
  and DC, ISO 15118-2 and DIN SPEC 70121 as `simctl set_ev` picks them; the bus (and the
  log, for SDP, which has no Josev API message) shows the whole sequence in order.
- Each misbehaviour of the car (`set_ev misbehave=...`) against our SECC, with the
  simulated board and the CS behind it: the SECC answers with the standard's response
  code or closes, and the power path opens.
- The EVCC against the harness's reference SECC (the iso15118 package's, Josev
  Community 0.31.2) in network namespaces of our own, for DIN DC and ISO 15118-2 AC and
  DC with EIM: an independent peer for our car's side. Root only (CI runs as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charger import config
from charger.app import App, secc_evse
from charger.bus.api import Message
from charger.protocols.iso15118.core import CoreSettings, Timers
from charger.protocols.iso15118.service import SeccService, secc_settings
from charger.protocols.iso15118.tls import TlsFiles
from charger.sim.board import SimBoard
from charger.sim.evcc import car as evcc_car
from charger.sim.evcc.car import SimEvcc, car_settings
from charger.sim.evcc.client import Link, free_sdp_port
from charger.sim.evcc.core import DEFAULT_MSG_TIMEOUT_S, EvccSettings
from charger.sim.evcc.din import DinEvcc
from charger.sim.evcc.iso2 import Iso2Evcc
from rig.processes import Broker
from tests.support import pki
from tests.support.probe import probe_on
from tests.support.station import DC_EVSE, running_station, station_config

pytestmark = pytest.mark.integration

EVSE_ID = "DE*TST*E0001"
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- a timeline of bus and log


@dataclass(frozen=True)
class Entry:
    kind: str  # "bus" or "log"
    name: str  # message name, or the log event
    data: dict[str, Any]
    type: str = ""  # request / response / update
    topic: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}.{self.type} {json.dumps(self.data, default=str)[:160]}"


class Timeline(logging.Handler):
    """Bus messages and the charger's log events in the order they happened."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)  # (the SECC logs loop messages at debug level)
        self.entries: list[Entry] = []

    def message(self, message: Message[Any]) -> None:
        self.entries.append(
            Entry("bus", message.name, dict(message.data), message.type, message.topic)
        )

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "kv", None) or {}
        self.entries.append(Entry("log", record.getMessage(), dict(fields)))

    def find(self, match: Callable[[Entry], bool], after: int = 0) -> int | None:
        for i in range(after, len(self.entries)):
            if match(self.entries[i]):
                return i
        return None

    async def wait(self, match: Callable[[Entry], bool], timeout_s: float = 20.0) -> Entry:
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    i = self.find(match)
                    if i is not None:
                        return self.entries[i]
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(f"not seen within {timeout_s} s:\n{self.dump()}") from None

    def dump(self, last: int = 120) -> str:
        return "\n".join(str(e) for e in self.entries[-last:])


@contextlib.contextmanager
def captured(timeline: Timeline) -> Iterator[None]:
    logger = logging.getLogger("charger")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(timeline)
    try:
        yield
    finally:
        logger.removeHandler(timeline)
        logger.setLevel(level)


def bus(name: str, type_: str = "", /, topic: str = "", **data: Any) -> Callable[[Entry], bool]:
    def match(e: Entry) -> bool:
        return (
            e.kind == "bus"
            and e.name == name
            and (not type_ or e.type == type_)
            and (not topic or e.topic == topic)
            and all(e.data.get(k) == v for k, v in data.items())
        )

    match.__name__ = f"bus {name}.{type_} {data}"
    return match


def state_info(status: str, **info: Any) -> Callable[[Entry], bool]:
    def match(e: Entry) -> bool:
        return (
            e.kind == "bus"
            and e.name == "iso15118_state_info"
            and e.topic == "josev/cs"
            and e.data["session_status"] == status
            and all(e.data.get("info", {}).get(k) == v for k, v in info.items())
        )

    match.__name__ = f"iso15118_state_info {status} {info}"
    return match


def log(what: str, **fields: Any) -> Callable[[Entry], bool]:
    def match(e: Entry) -> bool:
        return (
            e.kind == "log"
            and e.name == what
            and all(e.data.get(k) == v for k, v in fields.items())
        )

    match.__name__ = f"log {what} {fields}"
    return match


def in_order(timeline: Timeline, steps: list[Callable[[Entry], bool]]) -> list[int]:
    """The position of each step, each after the one before; fails naming the first
    step not found in order."""
    found, at = [], 0
    for step in steps:
        i = timeline.find(step, at)
        assert i is not None, (
            f"{step.__name__} not found after:\n{timeline.entries[at - 1] if at else ''}\n"
            f"--- timeline:\n{timeline.dump(400)}"
        )
        found.append(i)
        at = i + 1
    return found


# ---------------------------------------------------------------- charger sim in-process


def sim_config(tmp_path: Path, port: int, evse: str, sim: str = "") -> config.Config:
    text = f"""
[station]
state_dir = "{tmp_path / "state"}"
meter_interval_s = 0.5
[mqtt]
broker = "external"
port = {port}
[bus]
request_timeout_s = 2
validate_local = true
[hal]
backend = "sim"
[authorization]
mode = "free"
[[evse]]
id = 1
evse_id = "{EVSE_ID}"
max_current_a = 32
{evse if "hlc = true" in evse else "hlc = true" + chr(10) + evse}
[sim]
ev_hlc = true
ev_reaction_s = 0.1
ev_soc_percent = 75
ev_target_soc_percent = 80
time_scale = 100
{sim}
"""
    return config.parse(tomllib.loads(text), "test")


@contextlib.asynccontextmanager
async def charger_sim(cfg: config.Config) -> AsyncIterator[tuple[App, Timeline]]:
    """`charger sim` in this process: the App with the simulated board, its bus and log
    on one timeline."""
    timeline = Timeline()
    with captured(timeline):
        app = App(cfg)
        app.bus.subscribe_all(timeline.message)
        runner = asyncio.create_task(app.run())
        try:
            await timeline.wait(log("ready"))
            yield app, timeline
        finally:
            app.request_stop()
            async with asyncio.timeout(30):
                await runner


# The car's message timeouts stretched: CurrentDemand's 250 ms is the standard's, a
# stall of the loop on a loaded test machine is not what these tests are about (the
# timeouts themselves are tests/unit/sim's).
SLACK = 4.0
AC = ""  # an AC EVSE with hlc = true


def slack_of(settings: Callable[[Any], EvccSettings]) -> Callable[[Any], EvccSettings]:
    """The car's settings with its message timeouts stretched (see SLACK)."""
    return lambda sim: dataclasses.replace(settings(sim), msg_timeout_scale=SLACK)


VARIANTS = [("iso2", "ac", AC), ("iso2", "dc", DC_EVSE), ("din", "dc", DC_EVSE)]


@pytest.mark.parametrize(
    ("protocol", "energy", "evse"), VARIANTS, ids=["iso2-ac", "iso2-dc", "din-dc"]
)
async def test_a_session_of_the_simulated_car_on_the_bus(
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
    energy: str,
    evse: str,
) -> None:
    monkeypatch.setattr(evcc_car, "car_settings", slack_of(evcc_car.car_settings))
    cfg = sim_config(tmp_path, broker.port, evse)
    async with charger_sim(cfg) as (_app, timeline), probe_on(broker.port) as probe:
        state = await probe.sim("set_ev", protocol=protocol, energy=energy)
        assert state["state"]["evcc"]["protocol"] == protocol
        await probe.sim("plug_in")
        await timeline.wait(bus("stop_charging", "response"))
        await timeline.wait(log("sim_evcc_session_end"))
        state = await probe.sim("state")

    name = "DIN_SPEC_70121" if protocol == "din" else "ISO_15118_2"
    dc = energy == "dc"
    steps = [
        bus("cp_status", "update", state="B1"),
        bus("cp_pwm", "request", hlc=True, fault_state=False),
        bus("slac_status", "update", status="matched"),
        log("sdp", requested="NONE", answered="NONE"),  # the SECC answers the car's SDP
        log("sim_evcc_sdp", address="::1"),
        log("v2g_connected", peer="::1"),
        state_info("SupportedAppProtocol", protocol=name),
        bus("hlc_charging", "update", status=True),
        state_info("SessionSetup", evcc_id="02000000AA01"),
        state_info("ServiceDiscovery"),
        state_info("ServiceSelection", selected_payment_option="EIM"),
        state_info("Authorization"),
        state_info("ChargeParameterDiscovery"),
    ]
    if dc:
        steps += [
            bus("cp_status", "update", state="C2"),  # the car closes S2 for the cable check
            state_info("CableCheck"),
            bus("cable_check", "request", cable_check_action="start"),
            bus("cable_check", "response", cable_check_status="finished", isolation_level="valid"),
            state_info("PreCharge"),
            bus("power_electronics_setpoint", "request", is_precharge=True),
            state_info("PowerDelivery"),
            state_info("ChargingLoop"),
            bus("power_electronics_setpoint", "request", is_precharge=False),
            state_info("PowerDelivery"),
            bus(
                "power_electronics_setpoint", "request", dc={"voltage": 0.0, "charge_current": 0.0}
            ),
            state_info("WeldingDetection"),
        ]
    else:
        steps += [
            state_info("PowerDelivery"),
            state_info("ChargingLoop"),
            state_info("PowerDelivery"),
        ]
    steps += [
        state_info("SessionStop"),
        bus("hlc_charging", "update", status=False),
        state_info("Idle", stop_action="Terminate"),
        bus("stop_charging", "request"),
        bus("stop_charging", "response", status="accepted"),
    ]
    at = in_order(timeline, steps)
    if not dc:  # the car closes S2 after PowerDeliveryRes(Start), opens it after (Stop)
        start, loop_at, stop = (
            at[_index(steps, s, n)]
            for s, n in (("PowerDelivery", 1), ("ChargingLoop", 1), ("PowerDelivery", 2))
        )
        session_stop = at[_index(steps, "SessionStop")]
        for match in (
            bus("cp_status", "update", state="C2"),
            bus("cs_contactor_status", "update", status="closed"),
        ):
            assert start < (timeline.find(match, start) or len(timeline.entries)) < loop_at, (
                match.__name__
            )
        for match in (
            bus("cp_status", "update", state="B2"),
            bus("cs_contactor_status", "update", status="opened"),
        ):
            assert stop < (timeline.find(match, stop) or len(timeline.entries)) < session_stop, (
                match.__name__
            )
    loop_start = at[_index(steps, "ChargingLoop")]
    loop_end = at[_index(steps, "PowerDelivery", 2)]
    loop = timeline.entries[loop_start:loop_end]
    # the charging loop: the state of charge rises to the car's target
    evcc = state["state"]["evcc"]
    assert evcc["session"]["outcome"] == "completed", evcc
    assert evcc["session"]["reason"] == "target state of charge 80 % reached"
    assert state["state"]["ev"]["soc_percent"] >= 80.0
    if dc:
        socs = [e.data["present_soc"] for e in loop if e.name == "display_params"]
        assert socs == sorted(socs) and socs[0] < socs[-1] == 80, socs
        currents = [
            e.data["evses"][0]["dc"]["present_current"]
            for e in loop
            if e.name == "cs_status_and_limits" and e.type == "update"
        ]
        assert max(currents) > 100.0  # 50 kW at about 420 V
    else:
        energy_wh = [
            e.data["total_active_energy_imported"]
            for e in loop
            if e.name == "meter_values" and e.type == "update"
        ]
        assert (
            len(energy_wh) >= 2 and energy_wh == sorted(energy_wh) and energy_wh[0] < energy_wh[-1]
        )
    assert not any(e.kind == "log" and e.name == "task_failed" for e in timeline.entries)


def _index(steps: list[Callable[[Entry], bool]], status: str, nth: int = 1) -> int:
    seen = 0
    for i, step in enumerate(steps):
        if step.__name__.startswith(f"iso15118_state_info {status} "):
            seen += 1
            if seen == nth:
                return i
    raise ValueError(status)


# ---------------------------------------------------------------- misbehaviour

FAST = Timers(
    sequence_s=3.0,  # V2G_SECC_Sequence_Timeout, shortened: `late` waits 65 s
    communication_setup_s=3.0,
    cable_check_s=10.0,
    precharge_s=5.0,
    ongoing_s=10.0,
    linger_s=0.5,
    stop_reaction_s=1.0,
)


slack = slack_of(car_settings)


@contextlib.asynccontextmanager
async def hlc_station(
    tmp_path: Path,
    evse: str,
    *,
    car_tls: ssl.SSLContext | None = None,
    car_link: Link | None = None,
    car: Callable[[Any], EvccSettings] = slack,
    **secc: Any,
) -> AsyncIterator[tuple[Any, Timeline, SimEvcc]]:
    """The simulated board, the CS and SLAC (tests.support.station), our SECC on the
    loopback link with short timers, and the car's EVCC: `charger sim`'s parts. The car
    looks for the SECC on `car_link` when given (else the SECC's)."""
    cfg = station_config(tmp_path, evse=evse, sim="ev_hlc = true")
    timeline = Timeline()
    with captured(timeline):
        async with running_station(cfg) as st:
            st.bus.subscribe_all(timeline.message)
            link = Link.loopback(free_sdp_port())
            settings = dataclasses.replace(
                secc_settings(cfg.iso15118),
                core=CoreSettings(timers=FAST),
                sdp_port=link.sdp_port,
                step_ef_s=0.2,
                contactor_wait_s=1.0,
                **secc,
            )
            secc = SeccService(
                st.bus, secc_evse(cfg.evses[0], link.interface), settings, wait_for_interface=False
            )
            secc.start()
            evcc = SimEvcc(st.board.evse(1), car_link or link, settings=car, tls=car_tls)
            tasks = [asyncio.create_task(secc.run()), asyncio.create_task(evcc.run())]
            try:
                async with asyncio.timeout(5):
                    await secc.ready.wait()
                yield st, timeline, evcc
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await secc.close()


# (misbehaviour, the SECC's response code, or None: it closes the connection)
MISBEHAVIOURS = [("wrong_sequence", "FAILED_SequenceError"), ("bad_exi", "FAILED"), ("late", None)]
CARS = [("iso2", "ac", "hlc = true"), ("iso2", "dc", DC_EVSE), ("din", "dc", DC_EVSE)]


@pytest.mark.parametrize(("misbehaviour", "code"), MISBEHAVIOURS, ids=[m for m, _ in MISBEHAVIOURS])
@pytest.mark.parametrize(("protocol", "energy", "evse"), CARS, ids=["iso2-ac", "iso2-dc", "din-dc"])
async def test_a_misbehaving_car_is_refused_and_the_power_path_opens(
    tmp_path: Path,
    misbehaviour: str,
    code: str | None,
    protocol: str,
    energy: str,
    evse: str,
) -> None:
    dc = energy == "dc"
    async with hlc_station(tmp_path, evse) as (st, timeline, car):
        st.board.command(
            {"cmd": "set_ev", "protocol": protocol, "energy": energy, "misbehave": [misbehaviour]}
        )
        st.ev.plug_in()
        end = await timeline.wait(log("v2g_session_end", outcome="failed"))
        await timeline.wait(log("v2g_power_path_opened"))
        await timeline.wait(log("sim_evcc_session_end"))
        sim = st.board.evse(1)
        board_contactor, ev_contactor = sim.contactor_closed, sim.dc and sim.dc.ev_contactor_closed

    loop = "CurrentDemand" if dc else "ChargingStatus"
    # energy flowed before the car misbehaved
    charging = timeline.find(state_info("ChargingLoop"))
    assert charging is not None, timeline.dump()
    if dc:
        flowing = timeline.find(
            lambda e: (
                e.name == "cs_status_and_limits"
                and e.type == "update"
                and e.data["evses"][0]["dc"]["present_current"] > 100.0
            ),
            charging,
        )
    else:
        flowing = timeline.find(
            lambda e: (
                e.name == "meter_values" and e.type == "update" and e.data["current"]["l1"] > 0
            ),
            charging,
        )
    failed_at = timeline.find(log("v2g_session_end", outcome="failed"))
    assert flowing is not None and failed_at is not None and flowing < failed_at, timeline.dump()
    # the SECC's answer: the standard's response code in the response to what the car
    # sent (or to what it waits for, when the EXI did not decode), or the connection
    # closed after V2G_SECC_Sequence_Timeout
    result = car.results[-1]
    why = f"{result.ended}\n{timeline.dump()}"
    if misbehaviour == "wrong_sequence":
        answer = log("v2g_message", request="ServiceDiscoveryReq", code=code)
        assert end.data["reason"].startswith(f"{code}: ServiceDiscoveryReq is not allowed")
    elif misbehaviour == "bad_exi":
        answer = log("v2g_message", request=f"{loop}Req", response=f"{loop}Res", code=code)
        assert end.data["reason"].startswith("FAILED: undecodable EXI (")
    else:
        answer = log("v2g_session_end", reason="no request within 3 s (V2G_SECC_Sequence_Timeout)")
        assert not any(
            e.name == "v2g_message" and e.data["code"].startswith("FAILED")
            for e in timeline.entries
        )
    assert timeline.find(answer) is not None, why
    # the car read the code (the response goes out before the SECC closes)
    ended = result.ended
    if code is not None:
        last = result.exchanges[-1]
        assert (last.response, ended.code) == (
            f"{loop}Res" if misbehaviour == "bad_exi" else "ServiceDiscoveryRes",
            code,
        ), why
        assert ended.reason == f"{last.response} {code} (to {last.request})", why
    else:
        assert (ended.code, ended.reason) == (None, "the SECC closed the connection"), why
    # the power path opens: CP to state F, the contactor opened, the car's too (DC)
    opened = in_order(
        timeline,
        [
            log("v2g_session_end", outcome="failed"),
            bus("cp_pwm", "request", fault_state=True),
            log("v2g_power_path_opened", contactor="opened"),
        ],
    )
    assert (
        timeline.find(bus("cs_contactor_status", "update", status="opened"), charging) is not None
    )
    assert opened and not board_contactor and not ev_contactor


async def test_the_car_over_tls(tmp_path: Path) -> None:
    """ISO 15118-2 over TLS 1.2 (ECDHE-ECDSA-AES128-SHA256): the car asks for TLS in SDP
    and checks the SECC's chain against its root."""
    ca, ca_cert, ca_key = pki.root(tmp_path, "V2GRootCA")
    secc_cert = pki.leaf(tmp_path, "secc", (ca_cert, ca_key), common_name="SECC", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # ISO 15118-2: the chain, not a host name
    context.load_verify_locations(ca.cert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    files = TlsFiles(secc_cert.cert, secc_cert.key)
    station = hlc_station(tmp_path, "hlc = true", car_tls=context, tls="require", tls_files=files)
    async with station as (st, timeline, car):
        st.board.command({"cmd": "set_ev", "target_soc_percent": 41})
        st.ev.plug_in()
        await timeline.wait(log("sim_evcc_session_end"))
    in_order(
        timeline,
        [
            log("sdp", requested="TLS", answered="TLS"),
            log("sim_evcc_sdp", security="TLS"),
            log("v2g_connected", tls=True),
            state_info("ChargingLoop"),
            state_info("Idle", stop_action="Terminate"),
        ],
    )
    assert car.results[-1].ended.reason == "target state of charge 41 % reached"


# ---------------------------------------------------------------- retries


class VirtualClock:
    """The car's clock in a test (`SimEvse.clock`): a pause moves it on at once, so the
    spacing of the car's attempts is read off this clock, not the wall's."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def logged(timeline: Timeline, what: str) -> list[dict[str, Any]]:
    return [e.data for e in timeline.entries if e.kind == "log" and e.name == what]


async def test_a_failing_car_tries_again_then_gives_up(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`charger sim`, AC, a car that misbehaves in every session: each fails with
    FAILED_SequenceError, the SECC opens the power path and toggles E/F, and the car —
    which reported D-LINK_ERROR — tries again after its pause once SLAC has matched anew.
    With its default 2 retries (the station's C_sequ_retry) it gives up after the third
    attempt, as the station does: it falls back to basic charging."""
    monkeypatch.setattr(evcc_car, "car_settings", slack_of(evcc_car.car_settings))
    cfg = sim_config(tmp_path, broker.port, AC, 'ev_misbehave = ["wrong_sequence"]')
    clock = VirtualClock()
    async with charger_sim(cfg) as (app, timeline), probe_on(broker.port) as probe:
        assert isinstance(app.board, SimBoard)
        app.board.evse(1).clock = clock
        await probe.sim("plug_in")
        await timeline.wait(log("sim_evcc_gave_up"), timeout_s=60)
        await timeline.wait(bus("cp_pwm", "request", hlc=False, current=32.0))
        state = (await probe.sim("state"))["state"]

    attempts = logged(timeline, "sim_evcc_attempt")
    assert [(a["attempt"], a["of"], a["clock_s"]) for a in attempts] == [
        (1, 3, 0.0),
        (2, 3, 4.0),
        (3, 3, 8.0),
    ], timeline.dump()
    assert clock.sleeps == [4.0, 4.0]  # RETRY_PAUSE_S after each failure but the last
    retries = logged(timeline, "sim_evcc_retry")
    assert [(r["failed"], r["new_link"]) for r in retries] == [(1, True), (2, True)]
    assert all(r["reason"].startswith("ServiceDiscoveryRes FAILED_SequenceError") for r in retries)
    gave_up = logged(timeline, "sim_evcc_gave_up")
    assert [(g["attempts"], g["fallback"]) for g in gave_up] == [
        (3, "basic charging at a nominal duty cycle")
    ]
    # each attempt after the station's E/F and a new SLAC match; three failed sessions
    fail = log("v2g_session_end", outcome="failed")
    e_f = bus("cp_pwm", "request", fault_state=True)
    steps = [log("sim_evcc_attempt", attempt=1)]
    for n in (1, 2):
        steps += [fail, e_f, log("v2g_retry", failures=n), bus("slac_status", status="matched")]
        steps += [log("sim_evcc_attempt", attempt=n + 1)]
    steps += [fail, e_f, log("v2g_basic_charging", current_a=32.0)]
    found = in_order(timeline, steps)
    for n, (failed, attempt) in enumerate(zip(found[1:10:5], found[5::5], strict=True), 1):
        retry = timeline.find(log("sim_evcc_retry", failed=n), failed)
        assert retry is not None and retry < attempt, timeline.dump()
    gave_up_at = timeline.find(log("sim_evcc_gave_up", attempts=3))
    assert gave_up_at is not None and gave_up_at > found[-3], timeline.dump()
    assert len(logged(timeline, "v2g_session_end")) == 3
    session = state["evcc"]["session"]
    assert (session["attempt"], session["outcome"], session.get("gave_up")) == (3, "failed", True)


async def test_after_the_retries_an_ac_car_charges_basic(tmp_path: Path) -> None:
    """After its retries the AC car charges by PWM at the station's nominal duty cycle."""
    async with hlc_station(tmp_path, "hlc = true", retries=1) as (st, timeline, _car):
        st.board.command(
            {"cmd": "set_ev", "misbehave": ["wrong_sequence"], "retries": 1, "retry_pause_s": 0}
        )
        st.ev.plug_in()
        await timeline.wait(log("sim_evcc_gave_up", attempts=2))
        await timeline.wait(log("v2g_basic_charging"))
        basic = timeline.find(log("v2g_basic_charging"))
        await timeline.wait(
            lambda e: (
                basic is not None
                and timeline.entries.index(e) > basic
                and e.name == "meter_values"
                and e.type == "update"
                and e.data["current"]["l1"] > 0
            ),
            timeout_s=10,
        )


async def test_a_car_without_an_sdp_answer_tries_again_on_its_link(tmp_path: Path) -> None:
    """The SECC never answers the car's SDP (the car asks at a port nobody serves): each
    attempt fails before a connection, so the car tries again on the same link (no
    D-LINK_ERROR, one SLAC match) after its pause; `set_ev retries=3 retry_pause_s=1.5`:
    four attempts 1.5 s apart on its clock, then it gives up (DC: no fallback)."""

    def quick_sdp(sim: Any) -> EvccSettings:
        return dataclasses.replace(slack(sim), sdp_requests=3, sdp_interval_s=0.05)

    silent = Link.loopback(free_sdp_port())
    clock = VirtualClock()
    station = hlc_station(tmp_path, DC_EVSE, car_link=silent, car=quick_sdp)
    async with station as (st, timeline, car):
        st.board.evse(1).clock = clock
        st.board.command({"cmd": "set_ev", "retries": 3, "retry_pause_s": 1.5})
        st.ev.plug_in()
        await timeline.wait(log("sim_evcc_gave_up"))
        sim = st.board.evse(1)
        pilot, matched = sim.ev.evcc.pilot, sim.powerline.pev.matched

    attempts = logged(timeline, "sim_evcc_attempt")
    assert [(a["attempt"], a["of"], a["clock_s"]) for a in attempts] == [
        (1, 4, 0.0),
        (2, 4, 1.5),
        (3, 4, 3.0),
        (4, 4, 4.5),
    ], timeline.dump()
    assert clock.sleeps == [1.5, 1.5, 1.5]
    retries = logged(timeline, "sim_evcc_retry")
    assert [(r["failed"], r["new_link"]) for r in retries] == [(1, False), (2, False), (3, False)]
    assert all(r["reason"] == "SDP: no SDP response to 3 requests on lo" for r in retries)
    assert [(g["attempts"], g["fallback"]) for g in logged(timeline, "sim_evcc_gave_up")] == [
        (4, "none")
    ]
    assert (car.sessions, car.failures) == (4, 4)
    assert len(logged(timeline, "sim_evcc_session_end")) == 4
    assert not logged(timeline, "v2g_connected")  # the SECC never saw the car
    assert len([e for e in timeline.entries if bus("slac_status", status="matched")(e)]) == 1
    assert matched and pilot == "B"  # still on its link, S2 open: no HLC, no DC charging


# ---------------------------------------------------------------- the reference SECC

HARNESS = Path(os.environ.get("V2G_HARNESS", ROOT.parent / "shared" / "iso15118-harness"))
HARNESS_PYTHON = Path(os.environ.get("V2G_PYTHON", ROOT / ".venv" / "harness" / "bin" / "python"))
SECC_READY_S = 180  # the reference's JVM start and EXI codec warm-up
SESSION_S = 180
# The reference SECC (its Java EXI codec) answers in 100-600 ms on a loaded machine,
# beyond DIN's 250 ms for CurrentDemandRes (HARNESS.md 6.1: its own EVCC fails the same
# way there). The car's message timeouts are stretched for it; what the standard's would
# have said is printed with the response times.
TIMEOUT_SCALE = 8.0

EVCC_SCRIPT = """
import asyncio, json, sys
from charger.protocols.iso15118.sap import V2gProtocol
from charger.sim.evcc import standalone
from charger.sim.evcc.battery import Battery
from charger.sim.evcc.client import Link
from charger.sim.evcc.core import DEFAULT_MSG_TIMEOUT_S, EvccSettings
from charger.sim.evcc.din import DinEvcc
from charger.sim.evcc.iso2 import Iso2Evcc
iface, protocol, energy, scale = sys.argv[1:5]
settings = EvccSettings(
    protocol=V2gProtocol(protocol), dc=energy == "dc", precharge_cycles=5, charge_loops=10,
    msg_timeout_scale=float(scale),
)
result = asyncio.run(standalone.run(Link(iface), settings, Battery(60000.0, 40.0)))
print("RESULT " + json.dumps(standalone.summary(result)))
"""


@dataclass(frozen=True)
class Netns:
    ev_ns: str
    se_ns: str
    ev_if: str
    se_if: str


def _run(*args: str) -> str:
    done = subprocess.run(args, check=True, capture_output=True, text=True, timeout=20)
    return done.stdout


def _link_local(ns: str, iface: str) -> bool:
    return "inet6 fe80" in _run("ip", "-n", ns, "-6", "addr", "show", "dev", iface, "scope", "link")


@pytest.fixture
def netns() -> Iterator[Netns]:
    """Two network namespaces of this test's own (the harness's fixed v2g-* names may be
    in use by a concurrent run) joined by a veth pair, IPv6 link-local, DAD off."""
    missing = [t for t in ("ip", "ss", "java") if shutil.which(t) is None]
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs as root)")
    if missing or not HARNESS.is_dir() or not HARNESS_PYTHON.exists():
        pytest.skip(f"harness not available ({missing}, {HARNESS}, {HARNESS_PYTHON})")
    tag = f"{os.getpid() % 100000}"
    ns = Netns(f"evcc-{tag}", f"secc-{tag}", f"ev{tag}", f"se{tag}")
    for name in (ns.ev_ns, ns.se_ns):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        _run("ip", "netns", "add", name)
    try:
        _run("ip", "link", "add", ns.ev_if, "netns", ns.ev_ns, "type", "veth",
             "peer", "name", ns.se_if, "netns", ns.se_ns)  # fmt: skip
        for name, iface in ((ns.ev_ns, ns.ev_if), (ns.se_ns, ns.se_if)):
            for key in ("accept_dad=0", "addr_gen_mode=0", "disable_ipv6=0"):
                _run("ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv6.conf.{iface}.{key}")
            _run("ip", "-n", name, "link", "set", iface, "multicast", "on", "up")
            _run("ip", "-n", name, "link", "set", "lo", "up")
        deadline = time.monotonic() + 10
        while not (_link_local(ns.ev_ns, ns.ev_if) and _link_local(ns.se_ns, ns.se_if)):
            assert time.monotonic() < deadline, "no link-local addresses on the veth pair"
            time.sleep(0.05)
        yield ns
    finally:
        for name in (ns.ev_ns, ns.se_ns):
            pids = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=20
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


@contextlib.contextmanager
def reference_secc(ns: Netns, scenario: str, out: Path) -> Iterator[Path]:
    """The harness's reference SECC (`v2g_harness.py secc SCENARIO`) in the SECC's
    namespace, until it listens on UDP 15118; yields its log."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "secc.log"
    env = {**os.environ, "NETWORK_INTERFACE": ns.se_if, "V2G_OUT": str(out)}
    command = ["ip", "netns", "exec", ns.se_ns, str(HARNESS_PYTHON), "-u",
               str(HARNESS / "v2g_harness.py"), "secc", scenario]  # fmt: skip
    with log_path.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SECC_READY_S
        while ":15118 " not in _run("ip", "netns", "exec", ns.se_ns, "ss", "-Hlun") + " ":
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the reference SECC did not listen on UDP 15118"
            time.sleep(0.2)
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def our_evcc(ns: Netns, protocol: str, energy: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns.ev_ns,
            sys.executable,
            "-c",
            EVCC_SCRIPT,
            ns.ev_if,
            protocol,
            energy,
            str(TIMEOUT_SCALE),
        ],
        capture_output=True,
        text=True,
        timeout=SESSION_S,
        cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


DECODED = re.compile(r"Decoded message \(ns=[^)]*\): (\{.*\})$")


def decoded_by_the_reference(log_path: Path) -> list[str]:
    """The message names the reference SECC decoded, in order."""
    names = []
    for line in log_path.read_text(errors="replace").splitlines():
        match = DECODED.search(line)
        if match:
            document = json.loads(match.group(1))
            root = document.get("V2G_Message", {}).get("Body", document)
            names.append(next(iter(root)))
    return names


REFERENCE = [
    ("din-dc", "DIN_SPEC_70121", "dc"),
    ("iso2-ac-eim", "ISO_15118_2", "ac"),
    ("iso2-dc-eim", "ISO_15118_2", "dc"),
]


@pytest.mark.parametrize(
    ("scenario", "protocol", "energy"), REFERENCE, ids=[r[0] for r in REFERENCE]
)
def test_the_car_against_the_reference_secc(
    netns: Netns, tmp_path: Path, scenario: str, protocol: str, energy: str
) -> None:
    with reference_secc(netns, scenario, tmp_path / scenario) as secc_log:
        result = our_evcc(netns, protocol, energy)
    report = (
        json.dumps(result, indent=1)[:6000]
        + "\n--- reference SECC:\n"
        + secc_log.read_text()[-6000:]
    )
    assert result["outcome"] == "completed", report
    assert result["reason"] == "10 charging-loop messages", report
    exchanges = result["exchanges"]
    assert all(not x["code"].startswith(("FAILED", "Failed")) for x in exchanges), report
    requests = [x["request"] for x in exchanges]
    dc = energy == "dc"
    loop = "CurrentDemandReq" if dc else "ChargingStatusReq"
    assert requests.count(loop) == 10, report
    expected = ["SupportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq"]
    expected += (
        ["ServicePaymentSelectionReq", "ContractAuthenticationReq"]
        if protocol == "DIN_SPEC_70121"
        else ["PaymentServiceSelectionReq", "AuthorizationReq"]
    )
    expected += ["ChargeParameterDiscoveryReq"]
    expected += (
        ["CableCheckReq", "PreChargeReq", "PowerDeliveryReq"] if dc else ["PowerDeliveryReq"]
    )
    expected += [loop, "PowerDeliveryReq"] + (["WeldingDetectionReq"] if dc else [])
    expected += ["SessionStop" if protocol == "DIN_SPEC_70121" else "SessionStopReq"]
    deduplicated = [r for i, r in enumerate(requests) if i == 0 or requests[i - 1] != r]
    assert deduplicated == expected, report
    # the independent codec read every request the way we wrote it
    decoded = decoded_by_the_reference(secc_log)
    ours = ["SessionStopReq" if r == "SessionStop" else r for r in requests]
    assert [d.lower() for d in decoded] == [r.lower() for r in ours], (decoded, ours)
    assert "Traceback" not in secc_log.read_text(errors="replace")
    times = sorted(x["ms"] for x in exchanges)
    table = (DinEvcc if protocol == "DIN_SPEC_70121" else Iso2Evcc).MSG_TIMEOUT_S
    late = [x for x in exchanges if x["ms"] > 1000 * table.get(x["request"], DEFAULT_MSG_TIMEOUT_S)]
    print(  # the measured figures, for docs/iso15118.md
        f"{scenario}: SDP {result['sdp_ms']} ms, session {result['session_s']} s, "
        f"{len(exchanges)} requests, reference SECC response p50 {times[len(times) // 2]} ms, "
        f"max {times[-1]} ms, beyond the standard's EVCC timeouts: "
        f"{[(x['request'], x['ms']) for x in late]}"
    )
