"""What the simulated car's EVCC is told and what it reports: the `HlcCar` the board's
`SimEv` holds. `set_ev` changes the first part (`update`), the EVCC writes the second
(`pilot`, `ac_current_a`, `status`), and `state` shows both (`snapshot`).

Kept free of the board and the EVCC so that both can import it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charger.sim.settings import SimConfig

PROTOCOLS = ("iso2", "din")  # ISO 15118-2, DIN SPEC 70121
ENERGIES = ("auto", "ac", "dc")  # auto: what the EVSE is (kind = "dc" or AC)
MISBEHAVIOURS = (
    "wrong_sequence",  # a request the standard does not allow in the charging loop
    "late",  # the next request comes after the SECC's V2G_SECC_Sequence_Timeout
    "bad_exi",  # a charging-loop request whose EXI does not decode
)
# A failed session is tried again this many times per plug-in, this long after the
# failure (docs/iso15118.md, "The simulated car", for where the numbers come from): the
# budget of ISO 15118-3's C_sequ_retry and the spacing of its T_step_EF, the station's.
# (the defaults of `[sim] ev_retries` and `ev_retry_pause_s`)
RETRIES = 2
RETRY_PAUSE_S = 4.0


@dataclass(slots=True)
class HlcCar:
    # what the car is told (set_ev, [sim] ev_*)
    protocol: str = "iso2"
    energy: str = "auto"
    target_soc_percent: float = 100.0  # the car stops charging here
    departure_time_s: int = 0  # from the start of the session; 0: none given
    misbehave: tuple[str, ...] = ()
    paused: bool = False  # the driver paused charging (ISO 15118-2 SessionStop Pause)
    retries: int = RETRIES  # failed sessions tried again per plug-in, then it gives up
    retry_pause_s: float = RETRY_PAUSE_S  # from a failure to the next attempt (at least)
    # what its EVCC does: while `attached`, the car's S2 at 5 % is the EVCC's `pilot`
    # (B until PowerDelivery / CableCheck, C while it takes energy) and an AC car draws
    # `ac_current_a` per phase; otherwise the car behaves as IEC 61851-1 Annex A has it
    attached: bool = False
    pilot: str = "B"
    ac_current_a: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def configured(cls, sim: SimConfig) -> HlcCar:
        """The car as `[sim]` describes it."""
        return cls(
            protocol=sim.ev_protocol,
            energy=sim.ev_energy,
            target_soc_percent=sim.ev_target_soc_percent,
            departure_time_s=sim.ev_departure_time_s,
            misbehave=tuple(sim.ev_misbehave),
            retries=sim.ev_retries,
            retry_pause_s=sim.ev_retry_pause_s,
        )

    def update(self, payload: Mapping[str, Any]) -> None:
        """The set_ev keys of the EVCC; raises ValueError naming the first bad one."""
        protocol, energy = self.protocol, self.energy
        if "protocol" in payload:
            protocol = _choice(payload, "protocol", PROTOCOLS)
        if "energy" in payload:
            energy = _choice(payload, "energy", ENERGIES)
        if protocol == "din" and energy == "ac":
            raise ValueError("set_ev: DIN SPEC 70121 is DC only (energy=dc or auto)")
        self.protocol, self.energy = protocol, energy
        if "target_soc_percent" in payload:
            self.target_soc_percent = _within(payload, "target_soc_percent", 1, 100)
        if "departure_time_s" in payload:
            self.departure_time_s = int(_within(payload, "departure_time_s", 0, 604800, True))
        if "misbehave" in payload:
            self.misbehave = misbehaviours(payload["misbehave"])
        if "paused" in payload:
            value = payload["paused"]
            if not isinstance(value, bool):
                raise ValueError(f"set_ev: 'paused' must be true or false, got {value!r}")
            self.paused = value
        if "retries" in payload:
            self.retries = int(_within(payload, "retries", 0, 100, True))
        if "retry_pause_s" in payload:
            self.retry_pause_s = _within(payload, "retry_pause_s", 0, 3600)

    def snapshot(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "energy": self.energy,
            "target_soc_percent": self.target_soc_percent,
            "departure_time_s": self.departure_time_s,
            "misbehave": list(self.misbehave),
            "paused": self.paused,
            "retries": self.retries,
            "retry_pause_s": self.retry_pause_s,
            "pilot": self.pilot if self.attached else None,
            "session": self.status,  # the latest V2G session, as its EVCC reports it
        }


def misbehaviours(value: Any) -> tuple[str, ...]:
    """A misbehaviour list (a list of names, or one name); raises ValueError."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"set_ev: 'misbehave' must be a list of names, got {value!r}")
    unknown = [n for n in names if n not in MISBEHAVIOURS]
    if unknown:
        raise ValueError(
            f"set_ev: unknown misbehaviour {unknown[0]!r} (expected {', '.join(MISBEHAVIOURS)})"
        )
    return tuple(dict.fromkeys(names))


def _choice(payload: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = payload[key]
    if value not in allowed:
        raise ValueError(f"set_ev: '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _within(
    payload: Mapping[str, Any], key: str, lo: float, hi: float, integer: bool = False
) -> float:
    """A number (an integer where `integer`) within lo-hi; raises ValueError."""
    value = payload[key]
    kind = isinstance(value, int) if integer else _number(value)
    if not kind or isinstance(value, bool) or not lo <= value <= hi:
        what = "an integer within" if integer else "within"
        raise ValueError(f"set_ev: '{key}' must be {what} {lo:g}-{hi:g}, got {value!r}")
    return float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
