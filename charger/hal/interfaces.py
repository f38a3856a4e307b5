"""Hardware abstraction: what the CS controller needs from a board, as Protocols.

Setters are synchronous and must not block (GPIO/PWM register writes); reads that may
be slow (a Modbus meter, an RCD self-test) are async. Callbacks run in the event loop.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class SteadyLevel(enum.Enum):
    """A constant CP output, i.e. no PWM (IEC 61851-1 Table A.2/A.3)."""

    PLUS_12 = "+12V"  # x1: EVSE present, not offering current
    ZERO = "0V"  # state E: EVSE error / utility problem
    MINUS_12 = "-12V"  # state F: EVSE not available


@dataclass(frozen=True, slots=True)
class PilotReading:
    """Measured CP plateau levels and duty cycle (negative_v == positive_v without PWM)."""

    positive_v: float
    negative_v: float
    duty_percent: float


class ControlPilot(Protocol):
    def set_pwm(self, duty_percent: float) -> None:
        """1 kHz ±12 V PWM with the given duty (0 < duty < 100)."""

    def set_steady(self, level: SteadyLevel) -> None: ...

    def read(self) -> PilotReading: ...

    def on_change(self, callback: Callable[[PilotReading], None]) -> None:
        """Calls back whenever a debounced reading changes: from the event loop, never
        from inside one of the setters above."""


class Contactor(Protocol):
    def set_closed(self, closed: bool) -> None: ...

    def feedback_closed(self) -> bool | None:
        """Auxiliary-contact state, or None when the board has no feedback input. Never
        waits: a board with edge events returns the debounced state of the last edge."""


class ConnectorLock(Protocol):
    def set_locked(self, locked: bool) -> None:
        """Starts moving the lock (a motor pulse returns at once); `feedback_locked`
        reports when it got there."""

    def feedback_locked(self) -> bool | None: ...


class Rcd(Protocol):
    def tripped(self) -> bool: ...

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Calls back with the new tripped state (never for the trip a self-test causes)."""

    async def self_test(self) -> bool:
        """Injects the test current (an RDC-DD's test input) and checks that the device
        trips and re-arms; True when it did both. Trips it causes are not reported."""

    def reset(self) -> bool:
        """Tries to re-arm after a trip; True when the RCD is no longer tripped."""


@dataclass(frozen=True, slots=True)
class MeterReading:
    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    power_w: float
    frequency_hz: float
    power_factor: float
    energy_import_wh: float
    energy_export_wh: float
    reactive_import_varh: float
    reactive_export_varh: float
    dc_voltage_v: float | None = None  # a DC meter (DC EVSE): its voltage and current
    dc_current_a: float | None = None


class MeterError(Exception):
    """The meter did not answer (or answered garbage): no reading this time."""


class EnergyMeter(Protocol):
    async def read(self) -> MeterReading:
        """The meter's values now; raises MeterError when the meter does not answer."""


@dataclass(frozen=True, slots=True)
class SignedMeterValue:
    """A signed reading (OCMF and the like), as OCPP's SignedMeterValueType carries it."""

    signed_meter_data: str
    signing_method: str
    encoding_method: str  # "OCMF", "EDL", ...
    public_key: str


@runtime_checkable
class SigningMeter(Protocol):
    """An energy meter that signs a transaction's start and end readings itself
    (German Eichrecht meters: OCMF). No driver yet; the controller checks for it with
    isinstance, so a meter driver only has to add these two methods."""

    async def read(self) -> MeterReading: ...

    async def start_transaction(self, transaction_id: str) -> SignedMeterValue: ...

    async def stop_transaction(self, transaction_id: str) -> SignedMeterValue: ...


PP_OPEN_OHM = float("inf")


@dataclass(frozen=True, slots=True)
class ProximityReading:
    """The resistance between PP and PE of a socket outlet (IEC 61851-1 Annex B): the
    plug's coding resistor Rc, or PP_OPEN_OHM (inf) with no plug in the socket."""

    resistance_ohm: float


class ProximityPilot(Protocol):
    """The proximity (PP) contact of a socket outlet: a board that has one measures the
    cable's coding resistor. Fixed-cable stations have none."""

    def read(self) -> ProximityReading: ...

    def on_change(self, callback: Callable[[ProximityReading], None]) -> None:
        """Calls back from the event loop when the (debounced) resistance changes."""


class IdReader(Protocol):
    def on_token(self, callback: Callable[[str, str], None]) -> None:
        """Calls back with (id_token, token_type) for each presented token."""


@dataclass(frozen=True, slots=True)
class DcReading:
    """What a DC power module measures at its output terminals, before the DC contactors:
    with them closed that is the cable and the EV's inlet too."""

    voltage_v: float
    current_a: float


class PowerModule(Protocol):
    """The power stage of a DC EVSE (IEC 61851-23): a converter that regulates its output
    voltage to a target, limiting the current. AC EVSEs have none."""

    def set_limits(self, voltage_v: float, current_a: float) -> None:
        """Target output voltage and current limit; applied at once when enabled."""

    def enable(self) -> None: ...

    def disable(self) -> None:
        """Output off; the module's own discharge circuit then empties its output."""

    def read(self) -> DcReading:
        """The latest measurement (never waits)."""

    def on_reading(self, callback: Callable[[DcReading], None]) -> None:
        """Calls back from the event loop with each new measurement, never from inside
        one of the setters above."""


@dataclass(frozen=True, slots=True)
class IsolationReading:
    """An insulation monitoring device's result (IEC 61557-8) for the DC output:
    resistance of DC+ / DC- to PE, the lower of the two. None: no measurement completed
    since `start`."""

    resistance_ohm: float | None


class IsolationMonitor(Protocol):
    """The insulation monitoring device (IMD) on the DC output of a DC EVSE."""

    def start(self) -> None:
        """Starts measuring afresh (a result taken before is dropped); the device keeps
        measuring and reports every result until `stop`."""

    def stop(self) -> None: ...

    def read(self) -> IsolationReading: ...

    def on_reading(self, callback: Callable[[IsolationReading], None]) -> None:
        """Calls back from the event loop with each completed measurement."""


class FrameTransport(Protocol):
    """Raw Ethernet frames to and from the PLC modem (SLAC, ethertype 0x88E1)."""

    @property
    def mac(self) -> bytes:
        """The MAC address frames are sent from."""

    async def open(self) -> None: ...

    def send(self, frame: bytes) -> None:
        """Queues one Ethernet frame; never blocks."""

    def on_frame(self, callback: Callable[[bytes], None]) -> None:
        """Calls back from the event loop with every frame received."""

    def close(self) -> None: ...


class PlcLink(Protocol):
    """The HomePlug Green PHY modem an EVSE talks SLAC and ISO 15118 through."""

    @property
    def interface(self) -> str:
        """The network interface of the modem (e.g. the qcaspi one on a Pi)."""

    def frame_transport(self) -> FrameTransport | None:
        """An in-process link (the simulator), or None: use a raw socket on `interface`."""

    async def reset_modem(self) -> None:
        """Hardware reset of the modem where the board has a reset line."""


@dataclass(slots=True)
class EvseHardware:
    pilot: ControlPilot
    contactor: Contactor
    rcd: Rcd
    meter: EnergyMeter
    lock: ConnectorLock | None = None
    id_reader: IdReader | None = None
    proximity: ProximityPilot | None = None  # socket outlets: the PP contact
    power_module: PowerModule | None = None  # DC EVSEs: both of these
    isolation_monitor: IsolationMonitor | None = None
    plc: PlcLink | None = None


class Board(Protocol):
    @property
    def evses(self) -> Mapping[int, EvseHardware]:
        """Hardware per EVSE, keyed by OCPP EVSE id."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def drive_safe(self) -> None:
        """Opens every contactor and puts every CP in state F; must not fail or block."""
