"""An OCTT-style rig: the test CSMS plays the OCA Test System, the whole firmware runs.

The firmware is `charger.app.App` with the simulated board and car, on the test's own
event loop: the real CS controller, bus, OCPP client and durable stores. The rig does
the test cases' "manual actions" through the simulator (plug, present a card, the car
suspends, unplug), power-cycles and resets the firmware, and offers the OCA reusable
states (Booted, EVConnectedPreSession, Authorized, EnergyTransferStarted,
StopAuthorized, EVDisconnected, ...) as methods that really reach them, checking on the
way what the Part 6 reusable state checks.

Time is virtual: the loop (`OcttLoop`) keeps an offset on its clock, and the firmware
takes its intervals and timestamps from that loop (App's `monotonic` and `wall_clock`).
`advance(s)` moves the clock on once nothing is left to do at the current instant
(`settle`: no ready callback, no I/O event, no executor job), so retry intervals,
back-off, heartbeats and timeouts of real length pass in milliseconds, and "nothing is
sent" is checked at a moment the loop has provably passed.

The TLS Test System (`tls=`, the PKI of tests/support/ocpp_pki.py): the TS is served
over real TLS too (`front`, `tls_url`), by an endpoint that picks the server certificate
or TLS versions handshake by handshake (`front.plan`) and records each handshake
(`handshakes`); the station may run security profile 2 or 3 on it. `second_endpoint`
gives the TS another address (same log, its own refusals or silence) for the
network-profile cases; `attempts` lists the station's WebSocket handshakes at each.

Nothing here imports pytest (rig/ rule); `tests/integration/oca/conftest.py` wires it
to the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.v201 import call

from charger import config as charger_config
from charger.app import EXIT_RESTART, App
from charger.protocols.ocpp.security_log import SecurityLog
from charger.runtime.store import Store
from charger.sim.board import SimBoard, SimEvse
from rig.csms import CsmsState, Endpoint, Handshake, TlsFront, ocpp_csms, tls_front

T = TypeVar("T")

IDENTITY = "CS001"
PASSWORD = "octt-basic-auth-pw-0001"
EVSE_IDS = ("DE*OCA*E0001", "DE*OCA*E0002", "DE*OCA*E0003")
# <Configured valid_idtoken_idtoken> and friends: real ISO 14443 UIDs (defect 8)
VALID_TOKEN = "A11CE0A1"
OTHER_TOKEN = "B0B0B0B1"
INVALID_TOKEN = "DEADBEEF"
TOKEN_TYPE = "ISO14443"


def connector(evse: int, connector_id: int = 1) -> dict[str, Any]:
    """The Connector component of an EVSE's connector, as NotifyEvent names it."""
    return {"name": "Connector", "evse": {"id": evse, "connectorId": connector_id}}


def id_token(token: str = VALID_TOKEN, kind: str = TOKEN_TYPE) -> dict[str, str]:
    return {"idToken": token, "type": kind}


# ---------------------------------------------------------------- the virtual clock


class OcttLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock the rig moves on (`offset_s`), which counts the I/O
    events it processes and the executor jobs in flight, so the rig can tell when
    nothing is left to happen at the current instant."""

    def __init__(self) -> None:
        super().__init__()
        self.offset_s = 0.0
        self.io_events = 0
        self.executor_jobs = 0

    def time(self) -> float:
        return super().time() + self.offset_s

    def wall(self) -> float:
        """The wall clock the firmware sees: the system's, moved on with the loop."""
        return time.time() + self.offset_s

    def _process_events(self, event_list: list[Any]) -> None:
        self.io_events += len(event_list)
        super()._process_events(event_list)  # type: ignore[misc]

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        self.executor_jobs += 1
        future = super().run_in_executor(executor, func, *args)

        def done(_: object) -> None:
            self.executor_jobs -= 1

        future.add_done_callback(done)
        return future

    def busy(self) -> bool:
        """Something is due now: a ready callback, a job in a thread, a timer due."""
        scheduled = [h for h in self._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        due = bool(scheduled) and min(h.when() for h in scheduled) <= self.time()
        return bool(self._ready) or self.executor_jobs > 0 or due  # type: ignore[attr-defined]

    def next_timer(self) -> float | None:
        scheduled = [h.when() for h in self._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return min(scheduled, default=None)


def octt_loop() -> OcttLoop:
    return OcttLoop()


# ---------------------------------------------------------------- the Test System


@dataclass
class Msg:
    """One message the Test System saw: a CALL of the station ("cs") or of the TS ("ts",
    with the station's answer), its payload in OCPP's camelCase, and when (loop time)."""

    direction: str
    action: str
    payload: dict[str, Any]
    at: float
    answer: dict[str, Any] | None = None


class _Connections(list[Any]):
    """The TS's connections; runs what waits for the next one as it is accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Callable[[], None]] = []

    def append(self, item: Any) -> None:
        super().append(item)
        waiting, self.waiting = self.waiting, []
        for callback in waiting:
            callback()


@dataclass
class Attempt:
    """A WebSocket handshake the station began at one of the TS's endpoints."""

    endpoint: str  # "main", or the second endpoint's name
    outcome: str  # "accepted", "refused" (HTTP 503), "unanswered"
    at: float


@dataclass
class TestSystem(CsmsState):
    """The CSMS state of `rig.csms`, plus a timed log of both directions and of the
    station's connection attempts."""

    __test__ = False  # not a pytest class
    log: list[Msg] = field(default_factory=list)
    connections: list[Any] = field(default_factory=_Connections)
    attempts: list[Attempt] = field(default_factory=list)

    def note(self, action: str, payload: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        self.log.append(Msg("cs", action, snake_to_camel_case(payload), loop.time()))
        super().note(action, payload)

    def attempted(self, endpoint: str, outcome: str) -> None:
        self.attempts.append(Attempt(endpoint, outcome, asyncio.get_running_loop().time()))
        super().attempted(endpoint, outcome)


@dataclass(frozen=True)
class TlsMaterial:
    """The TLS Test System's certificates (tests/support/ocpp_pki.py makes them): the
    TS's server contexts by mode ("valid" the <Configured server certificate>; others
    such as "unknown_root", "expired", "wrong_host", "tls11"), and the station's files."""

    contexts: dict[str, ssl.SSLContext]
    ca_file: Path  # the CSMS root the station trusts
    client_cert_file: Path  # the station's certificate (security profile 3)
    client_key_file: Path
    host: str = "localhost"  # the server certificate's host: the wss:// URL's


def matches(value: Any, pattern: Any) -> bool:
    """`pattern` is a subset of `value`: dicts key by key, anything else by equality; a
    callable pattern is a predicate."""
    if callable(pattern):
        return bool(pattern(value))
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(value[k], v) for k, v in pattern.items()
        )
    return bool(value == pattern)


class CaseFailed(AssertionError):
    pass


# ---------------------------------------------------------------- the rig


def firmware_config(
    tmp: Path,
    csms_url: str,
    broker_port: int,
    *,
    evses: int = 1,
    extra: str = "",
    evse: str = "",
    ocpp: str = "",
) -> charger_config.Config:
    """`evse`: more keys for every [[evse]] table (socket_outlet = true, ...); `ocpp`:
    more keys for [ocpp] (security_profile, ca_file, ...)."""
    evse_tables = "".join(
        f'[[evse]]\nid = {i + 1}\nevse_id = "{EVSE_IDS[i]}"\nmax_current_a = 32\n{evse}\n'
        for i in range(evses)
    )
    text = f"""
[station]
state_dir = "{tmp / "state"}"
serial_number = "OCTT-0001"
meter_interval_s = 1
connection_timeout_s = 600
[log]
level = "info"
[mqtt]
broker = "external"
port = {broker_port}
[bus]
request_timeout_s = 5
[hal]
backend = "sim"
{evse_tables}
[sim]
ev_reaction_s = 0.5
ev_max_current_a = 16
time_scale = 1
physics_period_s = 1
[ocpp]
enabled = true
csms_url = "{csms_url}"
identity = "{IDENTITY}"
basic_auth_password = "{PASSWORD}"
{ocpp}
[authorization]
mode = "external"
{extra}
"""
    return charger_config.parse(tomllib.loads(text), "octt")


# What outlives the firmware across a reset or power cycle: the car (plugged in or not,
# its wish to charge, its battery) and the meter's register.
_World = dict[int, dict[str, Any]]


def _world(app: App | None) -> _World:
    if app is None or not isinstance(app.board, SimBoard):
        return {}
    return {
        evse: {
            "plugged": sim.ev.plugged,
            "wants_charge": sim.ev.wants_charge,
            "soc_percent": sim.ev.soc_percent,
            "energy_import_wh": sim.energy_import_wh,
        }
        for evse, sim in app.board.sims.items()
    }


class _RigApp(App):
    """The firmware, on a board whose car and meter are as the last run left them (a
    reset restarts the software, not the world around it)."""

    def __init__(self, config: charger_config.Config, world: _World, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._world = world

    def _create_board(self) -> Any:
        board = super()._create_board()
        assert isinstance(board, SimBoard)
        for evse, state in self._world.items():
            sim = board.evse(evse)
            sim.ev.plugged = state["plugged"]
            sim.ev.wants_charge = state["wants_charge"]
            sim.ev.soc_percent = state["soc_percent"]
            sim.energy_import_wh = state["energy_import_wh"]
            sim._last_reading = sim._reading()  # as the board reads it at power-up
        return board


class Octt:
    """The Test System and the whole firmware on one loop; see the module docstring.

    Steps: every manual action and every TS call starts a step (`step_mark`); `expect`
    looks for the station's message from the start of the current step on, so each
    check sits after the action that must cause it.
    """

    def __init__(
        self,
        tmp: Path,
        broker_port: int,
        *,
        evses: int = 1,
        config: str = "",
        evse: str = "",
        tls: TlsMaterial | None = None,
        security_profile: int = 1,
    ) -> None:
        """`tls`: the TLS Test System serves too (`front`, `tls_url`), and the station has
        its CSMS root and client certificate; `security_profile` 2 or 3: the station's
        configured profile (slot 1) is the TLS endpoint."""
        self.tmp = tmp
        self.broker_port = broker_port
        self.evses = evses
        self.extra_config = config
        self.evse_config = evse
        self.tls = tls
        self.security_profile = security_profile
        if security_profile >= 2 and tls is None:
            raise ValueError("security profile 2 and 3 need the TLS Test System (tls=...)")
        self.ts = TestSystem(interval=300, name="main")
        self.url = ""  # the station's configured CSMS URL (slot 1)
        self.plain_url = ""  # the TS over ws://
        self.tls_url = ""  # the TS over wss:// (the TLS endpoint), with `tls`
        self.front: TlsFront | None = None
        self.app: _RigApp | None = None
        self.boots = 0  # firmware starts (power-ups and resets)
        self.exit_codes: list[int] = []
        self.step_mark = 0
        self._runner: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()
        self._background: set[asyncio.Task[None]] = set()
        self._restart = True
        # what the TS configured (the station's defaults until it sets them)
        self.tx_start_points = ["EVConnected", "Authorized"]
        self.tx_stop_points = ["EVConnected", "Authorized"]

    @property
    def loop(self) -> OcttLoop:
        loop = asyncio.get_running_loop()
        if not isinstance(loop, OcttLoop):
            raise RuntimeError("the OCTT rig runs on an OcttLoop (rig.octt.octt_loop)")
        return loop

    # ------------------------------------------------------------ life cycle

    async def __aenter__(self) -> Octt:
        self.ts.wall_clock = self.loop.wall
        self.plain_url = self.url = await self._stack.enter_async_context(ocpp_csms(self.ts))
        ocpp = ""
        if self.tls is not None:
            self.front = await self._stack.enter_async_context(
                tls_front(self.tls.contexts, self.plain_url, self.tls.host)
            )
            self.tls_url = self.front.url
            ocpp = (
                f'ca_file = "{self.tls.ca_file}"\n'
                f'client_cert_file = "{self.tls.client_cert_file}"\n'
                f'client_key_file = "{self.tls.client_key_file}"\n'
                f"security_profile = {self.security_profile}\n"
            )
            if self.security_profile >= 2:
                self.url = self.tls_url
        self.config = firmware_config(
            self.tmp,
            self.url,
            self.broker_port,
            evses=self.evses,
            extra=self.extra_config,
            evse=self.evse_config,
            ocpp=ocpp,
        )
        self._start_firmware()
        return self

    async def second_endpoint(
        self, name: str = "alternative", *, tls: bool = False, **behaviour: Any
    ) -> Endpoint:
        """The TS's second endpoint (the network-profile cases' other address): the same
        Test System (one log) at another URL, with its own `refuse_connections` and
        `silent` (see `rig.csms.Endpoint`); `tls`: behind a TLS endpoint of its own."""
        endpoint = Endpoint(name, **behaviour)
        url = await self._stack.enter_async_context(ocpp_csms(self.ts, endpoint=endpoint))
        if tls:
            if self.tls is None:
                raise ValueError("a TLS endpoint needs the TLS Test System (tls=...)")
            front = await self._stack.enter_async_context(
                tls_front(self.tls.contexts, url, self.tls.host)
            )
            endpoint.url = front.url
        return endpoint

    def handshakes(self, *, after: float | None = None) -> list[Handshake]:
        """The TLS handshakes at the TLS endpoint (since loop time `after`)."""
        if self.front is None:
            raise CaseFailed("the rig has no TLS Test System")
        return [h for h in self.front.handshakes if after is None or h.at >= after]

    def attempts(self, *, after: float | None = None) -> list[Attempt]:
        """The station's WebSocket handshakes at the TS's endpoints (since `after`)."""
        return [a for a in self.ts.attempts if after is None or a.at >= after]

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_firmware()
        await self._stack.aclose()

    def _start_firmware(self) -> None:
        self._restart = True
        self._runner = asyncio.create_task(self._run_firmware(), name="octt firmware")

    async def _run_firmware(self) -> None:
        """The firmware as `charger run` runs it: a reset (exit 75) starts it again in
        place, with the same configuration and state directory."""
        while self._restart:
            loop = self.loop
            world = _world(self.app)
            self.app = _RigApp(self.config, world, monotonic=loop.time, wall_clock=loop.wall)
            self.boots += 1
            code = await self.app.run()
            self.exit_codes.append(code)
            if code != EXIT_RESTART:
                return

    async def _stop_firmware(self) -> None:
        self._restart = False
        if self.app is not None:
            self.app.request_stop()
        if self._runner is not None:
            await asyncio.wait_for(self._runner, 30)
            self._runner = None

    async def power_cycle(self) -> None:
        """Manual Action: power cycle the Charging Station. The CSMS loses the link
        without a close frame (as at a power cut) and the firmware starts again from
        what it committed to disk. In-process, the firmware still runs its shutdown path
        with the link gone; so no transaction may be open (a power cut during one is
        `test_power_cut.py`'s `charger sim` killed with SIGKILL)."""
        assert not self.open_transactions(), "power_cycle in-process: end the transaction first"
        self.mark()
        for ws in self.ts.connections:
            if ws.transport is not None:
                ws.transport.abort()
        await self._stop_firmware()
        await self.settle()
        self._start_firmware()

    # ------------------------------------------------------------ the clock

    async def settle(self) -> None:
        """Returns once nothing more happens at the current instant: no ready callback,
        no executor job, no timer due, and no I/O event in two polls of the selector;
        when the settling saw I/O (a peer talked), one more quiet look of 1 ms for an
        answer still on its way."""
        loop = self.loop
        quiet, talked = 0, False
        async with asyncio.timeout(30):
            while True:
                events = loop.io_events
                await asyncio.sleep(0.001 if quiet == 2 else 0)
                if loop.io_events != events:
                    talked = True
                if loop.io_events != events or loop.busy():
                    quiet = 0
                    continue
                quiet += 1
                if (quiet == 2 and not talked) or quiet == 3:
                    return

    async def advance(self, seconds: float) -> None:
        """Lets `seconds` of the firmware's time pass: timer by timer, each instant
        settled before the next, as a real clock would."""
        loop = self.loop
        target = loop.time() + seconds
        await self.settle()
        while True:
            now = loop.time()
            if now >= target:
                break
            due = loop.next_timer()
            step = target - now if due is None else min(max(due - now, 0.0), target - now)
            loop.offset_s += step
            await self.settle()

    def now(self) -> float:
        return self.loop.time()

    # ------------------------------------------------------------ what the TS saw

    def mark(self) -> int:
        """Starts a step: `expect` looks from here on."""
        self.step_mark = len(self.ts.log)
        return self.step_mark

    def sent(self, action: str, *, after: int | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The station's messages of `action` since the step's start (or `after`) that
        match `fields`."""
        return [m.payload for m in self.messages(action, after=after, **fields)]

    def messages(self, action: str, *, after: int | None = None, **fields: Any) -> list[Msg]:
        start = self.step_mark if after is None else after
        return [
            m
            for m in self.ts.log[start:]
            if m.direction == "cs" and m.action == action and matches(m.payload, fields)
        ]

    async def expect(
        self,
        action: str,
        *,
        within_s: float = 0.0,
        after: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The first message `action` from the station since the step's start (or
        `after`) that matches `fields`, letting at most `within_s` seconds of firmware
        time pass for it to come."""
        return (await self.expect_msg(action, within_s=within_s, after=after, **fields)).payload

    async def expect_msg(
        self,
        action: str,
        *,
        within_s: float = 0.0,
        after: int | None = None,
        **fields: Any,
    ) -> Msg:
        start = self.step_mark if after is None else after
        deadline = self.now() + within_s
        while True:
            await self.settle()
            found = self.messages(action, after=start, **fields)
            if found:
                return found[0]
            if self.now() >= deadline:
                seen = "\n".join(
                    f"  {m.direction} {m.action} {m.payload}" for m in self.ts.log[start:]
                )
                raise CaseFailed(
                    f"no {action} matching {fields} within {within_s} s; since the step:\n{seen}"
                )
            await self.advance(min(0.5, deadline - self.now()))

    def count(self, action: str, *, after: int | None = None, **fields: Any) -> int:
        start = self.step_mark if after is None else after
        return len(self.messages(action, after=start, **fields))

    async def nothing(self, action: str, *, after: int | None = None, **fields: Any) -> None:
        """No such message since the step's start. Call it once the moment the message
        would have come has provably passed (`advance`, `next_heartbeat`)."""
        await self.settle()
        start = self.step_mark if after is None else after
        found = self.sent(action, after=start, **fields)
        if found:
            raise CaseFailed(f"unexpected {action}: {found}")

    async def next_heartbeat(self, within_s: float = 3600) -> Msg:
        """Lets time pass until the station's next Heartbeat: everything due before it
        has been sent when it comes (one CALL at a time, in order)."""
        start = len(self.ts.log)
        return await self.expect_msg("Heartbeat", within_s=within_s, after=start)

    def transaction_events(self, *, after: int | None = 0) -> list[dict[str, Any]]:
        return self.sent("TransactionEvent", after=after)

    def open_transactions(self) -> set[str]:
        ids: dict[str, bool] = {}
        for p in self.transaction_events(after=0):
            ids[p["transactionInfo"]["transactionId"]] = p["eventType"] != "Ended"
        return {t for t, is_open in ids.items() if is_open}

    # ------------------------------------------------------------ the TS's calls

    @property
    def station(self) -> Any:
        """The TS's end of the current connection (an `ocpp` ChargePoint)."""
        if not self.ts.stations:
            raise CaseFailed("the station never connected")
        return self.ts.stations[-1]

    async def call(self, action: str, *, settle: bool = True, **payload: Any) -> dict[str, Any]:
        """The TS sends `action` (camelCase payload); returns the station's answer in
        camelCase. A CALLERROR raises the `ocpp` package's exception for its code.
        `settle` False: at once, without first letting the station finish what it does."""
        self.mark()
        if settle:
            await self.settle()
        request = getattr(call, action)(**camel_to_snake_case(payload))
        msg = Msg("ts", action, payload, self.now())
        self.ts.log.append(msg)
        station = self.station
        station._response_timeout = 120  # the TS waits longer than the station's timers
        answer = asyncio.ensure_future(station.call(request, suppress=False))
        # the station may answer after a timer of its own: in the foreground, time passes
        # while the TS waits (a background call, at_next_connection, leaves the clock to
        # the test)
        while settle:
            await self.settle()
            if answer.done():
                break
            await self.advance(0.5)
        response = await answer
        msg.answer = snake_to_camel_case(dataclasses.asdict(response))
        msg.answer = {k: v for k, v in msg.answer.items() if v is not None}
        return msg.answer

    async def set_variables(self, **values: str) -> None:
        """The case's "Before: Configuration State", as the TS sets it:
        set_variables(TxCtrlr__TxStartPoint="Authorized"); a `__` in the variable part
        names its instance (OCPPCommCtrlr__MessageAttempts__TransactionEvent)."""
        data = []
        for key, value in values.items():
            component, variable, *instance = key.split("__")
            var: dict[str, Any] = {"name": variable}
            if instance:
                var["instance"] = instance[0]
            data.append(
                {"component": {"name": component}, "variable": var, "attributeValue": value}
            )
        reply = await self.call("SetVariables", setVariableData=data)
        for key, value in values.items():
            if key == "TxCtrlr__TxStartPoint":
                self.tx_start_points = value.split(",")
            if key == "TxCtrlr__TxStopPoint":
                self.tx_stop_points = value.split(",")
        statuses = [r["attributeStatus"] for r in reply["setVariableResult"]]
        if statuses != ["Accepted"] * len(data):
            raise CaseFailed(f"configuration state not reached: {reply}")

    async def close_connection(self, *, refuse_reconnects: bool = True) -> None:
        """ "TS closes the WebSocket connection AND does not accept a reconnect"."""
        self.mark()
        if refuse_reconnects:
            self.ts.refuse_connections = 10**6
        await self.settle()
        with contextlib.suppress(Exception):
            await self.ts.connections[-1].close()
        await self.settle()

    def accept_connections(self) -> None:
        self.ts.refuse_connections = 0

    async def reconnected(self, within_s: float, *, since: int | None = None) -> float:
        """Lets time pass until the station's next accepted connection (the first after
        `since` connections, when given); returns when."""
        before = len(self.ts.connections) if since is None else since
        deadline = self.now() + within_s
        while len(self.ts.connections) == before:
            if self.now() >= deadline:
                raise CaseFailed(f"no reconnection within {within_s} s")
            await self.advance(min(0.5, deadline - self.now()))
        return self.now()

    def at_next_connection(self, action: str, **payload: Any) -> asyncio.Future[dict[str, Any]]:
        """The TS sends `action` the moment it accepts the station's next connection
        ("executed the moment the WebSocket connection is restored"); the answer."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, Any]] = loop.create_future()

        async def send() -> None:
            try:
                answer.set_result(await self.call(action, settle=False, **payload))
            except Exception as exc:  # handed to whoever awaits the answer
                answer.set_exception(exc)

        def accepted() -> None:
            self._background.add(loop.create_task(send()))

        assert isinstance(self.ts.connections, _Connections)
        self.ts.connections.waiting.append(accepted)
        return answer

    def connections(self) -> int:
        return len(self.ts.connections)

    async def security_log(self) -> list[dict[str, Any]]:
        """The station's security log (A04) as committed to its state directory: the
        events kept on disk, critical or not, read as the firmware reads them at start."""
        store = await asyncio.to_thread(Store, self.config.station.state_dir / "ocpp-dm.db")
        try:
            return await SecurityLog(store).entries()
        finally:
            store.close()

    # ------------------------------------------------------------ manual actions

    def sim(self, evse: int = 1) -> SimEvse:
        app = self.app
        if app is None or not isinstance(app.board, SimBoard):
            raise CaseFailed("the firmware is not running")
        return app.board.evse(evse)

    async def plug(self, evse: int = 1) -> None:
        """Manual Action: Connect the EV and EVSE."""
        self.mark()
        self.sim(evse).plug_in()
        await self.settle()

    async def unplug(self, evse: int = 1, *, at: str = "ev") -> None:
        """Manual Action: Disconnect the EV and EVSE; `at` "ev": on the EV side (a socket
        outlet's cable stays in the socket), "station": on the Charging Station side."""
        self.mark()
        self.sim(evse).unplug(at=at)
        await self.settle()

    async def present(
        self, token: str = VALID_TOKEN, evse: int = 1, kind: str = TOKEN_TYPE
    ) -> None:
        """Manual Action: Present idToken (at the EVSE's card reader)."""
        self.mark()
        self.sim(evse).present_token(token, kind)
        await self.settle()

    async def ev_suspends(self, evse: int = 1) -> None:
        """Manual Action: the EV suspends the energy transfer."""
        self.mark()
        self.sim(evse).request_charging(False)
        await self.settle()

    async def ev_resumes(self, evse: int = 1) -> None:
        self.mark()
        self.sim(evse).request_charging(True)
        await self.settle()

    # ------------------------------------------------------------ reusable states

    async def booted(
        self, *, reason: str | None = None, after: int | None = None, restarted: bool = True
    ) -> None:
        """Reusable State Booted, steps 3-8, after a power-up or reset (steps 1-2 or the
        manual action are the caller's): BootNotification answered Accepted, every
        connector Available with its AvailabilityState Delta, the security event
        (StartupOfTheDevice or ResetOrReboot; not `restarted`: the firmware did not
        start again, and no such event is due)."""
        start = self.step_mark if after is None else after
        boot = await self.expect("BootNotification", within_s=60, after=start)
        if reason is not None and boot["reason"] != reason:
            raise CaseFailed(f"BootNotification reason {boot['reason']}, not {reason}")
        for evse in range(1, self.evses + 1):
            await self.expect(
                "StatusNotification",
                within_s=5,
                after=start,
                connectorStatus="Available",
                evseId=evse,
                connectorId=1,
            )
            await self.expect(
                "NotifyEvent",
                within_s=5,
                after=start,
                eventData=lambda d, evse=evse: (
                    d[0]["trigger"] == "Delta"
                    and d[0]["actualValue"] == "Available"
                    and d[0]["component"] == connector(evse)
                    and d[0]["variable"] == {"name": "AvailabilityState"}
                ),
            )
        if restarted:
            await self.expect(
                "SecurityEventNotification",
                within_s=5,
                after=start,
                type=lambda t: t in ("StartupOfTheDevice", "ResetOrReboot"),
            )
        await self.settle()

    async def reset_and_boot(self, kind: str = "Immediate") -> None:
        """Reusable State Booted by steps 1-2: ResetRequest, answered Accepted."""
        reply = await self.call("Reset", type=kind)
        if reply["status"] != "Accepted":
            raise CaseFailed(f"ResetResponse {reply}")
        await self.booted()

    async def ev_connected_pre_session(
        self, evse: int = 1, *, authorized: bool = False
    ) -> dict[str, Any]:
        """Reusable State EVConnectedPreSession: plug in; StatusNotification Occupied
        with its Delta, and (TxStartPoint EVConnected, or a transaction already going)
        the TransactionEvent; returns it (or {} when none is due)."""
        await self.plug(evse)
        await self.occupied(evse)
        if authorized or "EVConnected" in self.tx_start_points:
            return await self.expect(
                "TransactionEvent",
                within_s=5,
                evse={"id": evse, "connectorId": 1},
                triggerReason=lambda r: (
                    r in ("CablePluggedIn", "ChargingStateChanged", "RemoteStart")
                ),
            )
        return {}

    async def occupied(self, evse: int = 1, status: str = "Occupied") -> None:
        await self.expect(
            "StatusNotification",
            within_s=5,
            connectorStatus=status,
            evseId=evse,
            connectorId=1,
        )
        await self.expect(
            "NotifyEvent",
            within_s=5,
            eventData=lambda d: (
                d[0]["trigger"] == "Delta"
                and d[0]["actualValue"] == status
                and d[0]["component"] == connector(evse)
                and d[0]["variable"] == {"name": "AvailabilityState"}
            ),
        )

    async def authorized(
        self, evse: int = 1, *, token: str = VALID_TOKEN, tx_expected: bool = True
    ) -> dict[str, Any]:
        """Reusable State Authorized, Main A (local): present the card; AuthorizeRequest
        with it, then the TransactionEvent with triggerReason Authorized and the idToken
        (when TxStartPoint has Authorized or the transaction started); returns it."""
        await self.present(token, evse)
        await self.expect("Authorize", within_s=5, idToken=id_token(token))
        if not tx_expected:
            return {}
        return await self.expect(
            "TransactionEvent",
            within_s=5,
            triggerReason="Authorized",
            idToken=id_token(token),
        )

    async def authorized_remotely(
        self, evse: int = 1, *, token: str = VALID_TOKEN, remote_start_id: int = 1
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reusable State Authorized, Main B: RequestStartTransaction; returns its answer
        and the TransactionEvent with triggerReason RemoteStart and the remoteStartId."""
        reply = await self.call(
            "RequestStartTransaction",
            idToken=id_token(token),
            evseId=evse,
            remoteStartId=remote_start_id,
        )
        if reply["status"] != "Accepted":
            raise CaseFailed(f"RequestStartTransactionResponse {reply}")
        event = await self.expect(
            "TransactionEvent",
            within_s=5,
            triggerReason="RemoteStart",
            idToken=id_token(token),
            transactionInfo={"remoteStartId": remote_start_id},
        )
        return reply, event

    async def energy_transfer_started(self, evse: int = 1) -> dict[str, Any]:
        """Reusable State EnergyTransferStarted, part 2 (the EV is connected and the
        session authorized): the car takes energy; TransactionEvent ChargingStateChanged
        Charging within the car's reaction; returns it."""
        self.mark()
        return await self.expect(
            "TransactionEvent",
            within_s=10,
            triggerReason="ChargingStateChanged",
            transactionInfo={"chargingState": "Charging"},
        )

    async def charging(self, evse: int = 1, token: str = VALID_TOKEN) -> str:
        """Booted -> EVConnectedPreSession -> Authorized -> EnergyTransferStarted (the
        defaults: TxStartPoint EVConnected, Authorized); returns the transactionId."""
        started = await self.ev_connected_pre_session(evse)
        await self.authorized(evse, token=token)
        await self.energy_transfer_started(evse)
        return str(started["transactionInfo"]["transactionId"])

    async def stop_authorized(
        self, evse: int = 1, *, token: str = VALID_TOKEN
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reusable State StopAuthorized, Main A (local): the same card again; the
        TransactionEvent StopAuthorized, then the Ended one (ChargingStateChanged,
        EVConnected, stoppedReason Local) once the power path has opened."""
        await self.present(token, evse)
        stop = await self.expect("TransactionEvent", within_s=5, triggerReason="StopAuthorized")
        ended = await self.expect("TransactionEvent", within_s=10, eventType="Ended")
        return stop, ended

    async def stop_authorized_post_session(
        self, evse: int = 1, *, token: str = VALID_TOKEN
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """StopAuthorized then EVConnectedPostSession while the transaction goes on
        (TxStopPoint without Authorized): the StopAuthorized event, then
        ChargingStateChanged with chargingState EVConnected."""
        await self.present(token, evse)
        stop = await self.expect("TransactionEvent", within_s=5, triggerReason="StopAuthorized")
        after = await self.expect(
            "TransactionEvent",
            within_s=10,
            triggerReason="ChargingStateChanged",
            transactionInfo={"chargingState": "EVConnected"},
        )
        return stop, after

    async def id_token_cached(
        self, token: str, info: dict[str, Any], *, lapse_s: float = 61
    ) -> None:
        """Memory State IdTokenCached, Main B: the TS answers the card's AuthorizeRequest
        with `info`; presented without a cable, an accepted authorization lapses after
        EVConnectionTimeOut (`lapse_s` lets that much time pass)."""
        self.ts.token_info[token] = info
        await self.present(token)
        await self.expect("Authorize", within_s=5, idToken=id_token(token))
        if info.get("status") == "Accepted":
            await self.advance(lapse_s)
        await self.settle()

    async def energy_transfer_suspended(self, evse: int = 1) -> dict[str, Any]:
        """Reusable State EnergyTransferSuspended: the EV suspends; TransactionEvent
        ChargingStateChanged SuspendedEV (Updated), or Ended StoppedByEV."""
        await self.ev_suspends(evse)
        event = await self.expect(
            "TransactionEvent",
            within_s=10,
            transactionInfo={"chargingState": lambda s: s in ("SuspendedEV", "EVConnected")},
        )
        if event["eventType"] == "Ended":
            assert event["transactionInfo"]["stoppedReason"] == "StoppedByEV", event
        else:
            assert event["triggerReason"] == "ChargingStateChanged", event
        return event

    async def ev_disconnected(self, evse: int = 1, *, tx_ends: bool = False) -> dict[str, Any]:
        """Reusable State EVDisconnected: unplug; StatusNotification Available with its
        Delta; the Ended TransactionEvent (EVCommunicationLost, Idle) when the
        transaction had not ended yet; returns it (or {})."""
        await self.unplug(evse)
        await self.occupied(evse, "Available")
        if not tx_ends:
            return {}
        return await self.expect(
            "TransactionEvent",
            within_s=5,
            eventType="Ended",
            triggerReason="EVCommunicationLost",
            transactionInfo={"chargingState": "Idle"},
        )

    async def unavailable(self, evse: int | None = None) -> dict[str, Any]:
        """Reusable State Unavailable for an EVSE (or the station): ChangeAvailability
        Inoperative answered Accepted, the connectors report Unavailable."""
        payload: dict[str, Any] = {"operationalStatus": "Inoperative"}
        if evse is not None:
            payload["evse"] = {"id": evse}
        reply = await self.call("ChangeAvailability", **payload)
        if reply["status"] != "Accepted":
            raise CaseFailed(f"ChangeAvailabilityResponse {reply}")
        for e in [evse] if evse is not None else range(1, self.evses + 1):
            await self.occupied(e, "Unavailable")
        return reply


@contextlib.asynccontextmanager
async def octt(
    tmp: Path,
    broker_port: int,
    *,
    evses: int = 1,
    config: str = "",
    evse: str = "",
    boot: bool = True,
    tls: TlsMaterial | None = None,
    security_profile: int = 1,
) -> AsyncIterator[Octt]:
    """The rig, started; with `boot`, the station has reached the Booted state."""
    async with Octt(
        tmp,
        broker_port,
        evses=evses,
        config=config,
        evse=evse,
        tls=tls,
        security_profile=security_profile,
    ) as rig:
        if boot:
            await rig.booted()
        yield rig


def payloads(msgs: Iterable[Msg]) -> list[dict[str, Any]]:
    return [m.payload for m in msgs]
