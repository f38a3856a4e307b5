"""The test rig of the SLAC state machine: an injected clock, frames through the codec."""

from __future__ import annotations

from typing import TypeVar

from charger.protocols.slac import evse as fsm
from charger.protocols.slac import mme
from charger.protocols.slac.evse import SlacEvse, SlacSettings

M = TypeVar("M", bound=mme.Mme)
E = TypeVar("E")

EVSE_MAC = bytes.fromhex("0200000000ee")
PEV_A = bytes.fromhex("02000000aa01")
PEV_B = bytes.fromhex("02000000bb01")
RUN_A = PEV_A + b"\x00\x01"
RUN_B = PEV_B + b"\x00\x01"
NMK = bytes.fromhex("b59319d7e8157ba001b018669ccee30d")
MODEM = bytes.fromhex("00b052eeee01")
IMPOSTOR = bytes.fromhex("02000000cc01")  # an EV (or anyone) on the line that is not PEV_A


class Rig:
    def __init__(self, **settings: object) -> None:
        self.now = 0.0
        self.slac = SlacEvse(
            SlacSettings(evse_mac=EVSE_MAC, **settings),  # type: ignore[arg-type]
            nmk_source=lambda: NMK,
        )
        self.sent: list[tuple[bytes, mme.Mme]] = []
        self.events: list[fsm.Event] = []

    def collect(self) -> Rig:
        self.sent += self.slac.drain_sends()
        self.events += self.slac.drain_events()
        return self

    def at(self, t: float) -> Rig:
        self.now = t
        self.slac.tick(t)
        return self.collect()

    def rx(self, src: bytes, message: mme.Mme) -> Rig:
        # round-trip through bytes, as on the wire
        raw = mme.encode_frame(EVSE_MAC, src, message)
        self.slac.receive(self.now, mme.decode_frame(raw))
        return self.collect()

    def knows_modem(self) -> Rig:
        """The driver's query at start: the answer tells the modem's address."""
        self.slac.query_modem()
        return self.rx(MODEM, mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-1.1.0")).collect()

    def started(self) -> Rig:
        self.knows_modem()
        self.slac.start(self.now)
        return self.collect()

    def key_set(self, src: bytes = MODEM, result: int = 1) -> Rig:
        return self.rx(src, mme.CmSetKeyCnf(result, bytes(4), bytes(4), 4, 0, 0, 0))

    def start_ready(self) -> Rig:
        return self.started().key_set()

    def sent_of(self, kind: type[M]) -> list[tuple[bytes, M]]:
        return [(dst, m) for dst, m in self.sent if isinstance(m, kind)]

    def events_of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    # the EV's messages
    def parm(self, pev: bytes = PEV_A, run: bytes = RUN_A) -> Rig:
        return self.rx(pev, mme.CmSlacParmReq(0, 0, run))

    def start_atten(self, pev: bytes = PEV_A, run: bytes = RUN_A) -> Rig:
        return self.rx(pev, mme.CmStartAttenCharInd(0, 0, 10, 6, 1, pev, run))

    def sound(self, pev: bytes = PEV_A, run: bytes = RUN_A, remaining: int = 9) -> Rig:
        return self.rx(pev, mme.CmMnbcSoundInd(0, 0, bytes(17), remaining, run))

    def profile(self, pev: bytes = PEV_A, value: int = 20, src: bytes = MODEM) -> Rig:
        return self.rx(src, mme.CmAttenProfileInd(pev, bytes([value]) * 58))

    def atten_rsp(self, pev: bytes = PEV_A, run: bytes = RUN_A, result: int = 0) -> Rig:
        return self.rx(pev, mme.CmAttenCharRsp(0, 0, pev, run, bytes(17), bytes(17), result))

    def validate(self, pev: bytes = PEV_A, timer_100ms: int = 0) -> Rig:
        return self.rx(pev, mme.CmValidateReq(0, timer_100ms, 1))

    def match_req(self, pev: bytes = PEV_A, run: bytes = RUN_A) -> Rig:
        return self.rx(
            pev, mme.CmSlacMatchReq(0, 0, 0x3E, bytes(17), pev, bytes(17), EVSE_MAC, run)
        )

    def ignored(self) -> list[str]:
        return [e.what for e in self.events if isinstance(e, fsm.Ignored)]

    def tick_at_deadline(self) -> Rig:
        """What the driver does: sleep until next_deadline(), then tick."""
        deadline = self.slac.next_deadline()
        assert deadline is not None
        return self.at(deadline)

    def sounded(self, pev: bytes = PEV_A, run: bytes = RUN_A) -> Rig:
        self.parm(pev, run).start_atten(pev, run)
        for i in range(10):
            self.profile(pev, 10 if i % 2 else 20)
        return self
