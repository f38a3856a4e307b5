"""The simulator's command service: JSON commands on MQTT `sim/cmd`, replies on
`sim/reply` (README, "Simulated board command set"), over its own MQTT connection.

It also runs the demo loop of `charger sim --demo`: a car charges at EVSE 1 (as IEC
61851-1 basic charging, or with ISO 15118 where EVSE 1 has `hlc = true`), then, at
every DC EVSE with `hlc = true` whose car does HLC (`[sim] ev_hlc`), a CCS car charges
with ISO 15118: ISO 15118-2 and DIN SPEC 70121 in turn."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from charger.bus.messages import Topic
from charger.protocols.mqtt.connection import BrokerAddress, Link, keep_linked
from charger.runtime import jsonsafe
from charger.runtime.log import event
from charger.sim.board import SimBoard

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096

# `charger sim --demo`: a car arrives, charges, stops and leaves, over and over.
DEMO_SCRIPT: tuple[tuple[float, dict[str, Any]], ...] = (
    (3.0, {"cmd": "plug_in"}),
    (30.0, {"cmd": "stop_charging"}),
    (4.0, {"cmd": "unplug"}),
    (1.0, {"cmd": "start_charging"}),
)
# ... and a CCS car at a DC EVSE: SLAC, SDP, the V2G session with cable check and
# pre-charge, the charging loop, the stop with welding detection (about 10 s of the 40)
DC_HLC_SCRIPT: tuple[tuple[float, dict[str, Any]], ...] = (
    (3.0, {"cmd": "plug_in"}),
    (40.0, {"cmd": "stop_charging"}),
    (6.0, {"cmd": "unplug"}),
    (1.0, {"cmd": "start_charging"}),
)
DEMO_PROTOCOLS = ("iso2", "din")  # the DC car's, round by round


class SimCommandService:
    def __init__(self, board: SimBoard | None, broker: BrokerAddress) -> None:
        """`board` None: `charger sim` with cs = "remote" has no simulated board, and
        says so to every command."""
        self._board = board
        self._broker = broker
        self.connected = asyncio.Event()
        self._paused = asyncio.Event()  # reading paused for a full socket

    async def run(self) -> None:
        await keep_linked(self._broker, "charger-sim", self._session, self.connected)

    async def _session(self, link: Link) -> None:
        """On the bridge's own MQTT link: each command is run as its read brings it and
        answered at once (QoS 0, the broker is local). While the socket holds more than
        the link's high mark, reading pauses, so a flood of commands cannot pile up
        replies. (aiomqtt, used before, logged an EBADF error at every shutdown.)"""
        link.on_message = lambda topic, payload: self._command(link, payload)
        await link.subscribe([Topic.SIM_CMD])
        self.connected.set()
        while True:
            self._paused.clear()
            paused = asyncio.create_task(self._until_paused())
            try:
                await asyncio.wait([link.lost, paused], return_when=asyncio.FIRST_COMPLETED)
            finally:
                paused.cancel()
            if link.lost.done():
                await link.lost  # raises LinkError: keep_linked connects again
            await link.writable.wait()  # paused by `_command` until the socket takes more
            link.resume_reading()

    async def _until_paused(self) -> None:
        await self._paused.wait()

    def _command(self, link: Link, payload: bytes) -> None:
        link.publish(Topic.SIM_REPLY, self.handle(payload))
        if not link.writable.is_set():
            link.pause_reading()
            self._paused.set()

    def handle(self, raw: bytes) -> bytes:
        """Runs one command; the JSON reply says ok with the state, or what was wrong."""
        command: Any = None
        reply: dict[str, Any]
        try:
            try:
                command = jsonsafe.loads(raw, max_bytes=MAX_COMMAND_BYTES, max_depth=4)
            except jsonsafe.JsonError as exc:
                raise ValueError(f"the command is {exc}") from None
            if not isinstance(command, dict):
                raise ValueError('a command is a JSON object such as {"cmd": "plug_in"}')
            if self._board is None:
                raise ValueError('this charger has no simulated board (cs = "remote"; not sim)')
            reply = {"ok": True, "state": self._board.command(command)}
        except ValueError as exc:  # JsonError and the board's argument errors
            event(log, logging.WARNING, "sim_command_rejected", reason=str(exc))
            reply = {"ok": False, "error": str(exc)}
        if isinstance(command, dict) and "id" in command:
            reply["id"] = command["id"]
        return jsonsafe.dumps(reply).encode()


def demo_plan(board: SimBoard) -> list[tuple[int, tuple[tuple[float, dict[str, Any]], ...]]]:
    """(EVSE, script) in the order the demo runs them each round."""
    first = min(board.sims)
    dc_hlc = [
        evse_id
        for evse_id, sim in sorted(board.sims.items())
        if sim.dc is not None and sim.config.hlc and sim.ev.hlc
    ]
    plan = [] if first in dc_hlc else [(first, DEMO_SCRIPT)]
    return plan + [(evse_id, DC_HLC_SCRIPT) for evse_id in dc_hlc]


async def run_demo(board: SimBoard) -> None:
    plan = demo_plan(board)
    for round_ in itertools.count():
        for evse_id, script in plan:
            if script is DC_HLC_SCRIPT:
                protocol = DEMO_PROTOCOLS[round_ % len(DEMO_PROTOCOLS)]
                board.command({"cmd": "set_ev", "evse": evse_id, "protocol": protocol})
            for delay_s, command in script:
                await asyncio.sleep(delay_s)
                state = board.command({**command, "evse": evse_id})
                event(
                    log,
                    logging.INFO,
                    "demo",
                    evse=evse_id,
                    cmd=command["cmd"],
                    ev_state=state["ev"]["state"],
                    soc_percent=state["ev"]["soc_percent"],
                    energy_wh=state["energy_import_wh"],
                    **_v2g(state),
                )


def _v2g(state: dict[str, Any]) -> dict[str, Any]:
    """The latest V2G session of an HLC EVSE's car, for the demo's log line."""
    evcc = state.get("evcc")
    if evcc is None:
        return {}
    session = evcc["session"]
    v2g = session.get("outcome", session.get("stage"))
    return {"protocol": evcc["protocol"], **({"v2g": v2g} if v2g else {})}
