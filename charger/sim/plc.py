"""Simulated powerline for one EVSE: its QCA7000 modem, the cable, and the EV's SLAC stack.

The EVSE host talks to `host_link` exactly as to a modem on a raw socket. The modem
answers CM_SET_KEY (result 0x01, as QCA firmware does), VS_SW_VER, VS_PL_LNK_STATUS and
VS_RS_DEV, turns each sound from the EV into a CM_ATTEN_PROFILE.IND, and forwards the
other SLAC messages across the cable. The EV side (`SimPev`) does what a car does when it
sees 5 %: CM_SLAC_PARM.REQ, CM_START_ATTEN_CHAR.IND, sounds, checks the attenuation,
CM_SLAC_MATCH.REQ, then joins the EVSE's network with the NMK it was given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from charger.hal.interfaces import FrameTransport
from charger.protocols.slac import mme
from charger.runtime.log import event

log = logging.getLogger(__name__)

SOUND_INTERVAL_S = 0.02  # TP_EV_batch_msg_interval
PARM_RETRY_S = 1.0  # the EV repeats CM_SLAC_PARM.REQ until answered
ATTEN_THRESHOLD_DB = 40  # the EV refuses an EVSE heard worse than this (as plc-utils pev)
START_ATTEN_REPEAT = 3  # C_EV_start_atten_char_inds


class _HostLink:
    """The FrameTransport the EVSE host sees."""

    def __init__(self, line: SimPowerline, mac: bytes) -> None:
        self._line = line
        self._mac = mac
        self._callbacks: list[Callable[[bytes], None]] = []

    @property
    def mac(self) -> bytes:
        return self._mac

    async def open(self) -> None:
        return None

    def send(self, frame: bytes) -> None:
        asyncio.get_running_loop().call_soon(self._line.from_host, frame)

    def on_frame(self, callback: Callable[[bytes], None]) -> None:
        self._callbacks.append(callback)

    def deliver(self, frame: bytes) -> None:
        for callback in tuple(self._callbacks):
            callback(frame)

    def close(self) -> None:
        return None


class SimPev:
    """The EV's side of SLAC, as the plc-utils `pev` does it."""

    def __init__(self, line: SimPowerline, mac: bytes) -> None:
        self._line = line
        self.mac = mac
        self.attenuation_db = 20
        self.lose_sounds = 0
        self.nmk: bytes | None = None
        self.matched = False
        self._attempt = 0
        self._run_id = b""
        self._timer: asyncio.TimerHandle | None = None
        self._evse_mac = b""
        self._params: mme.CmSlacParmCnf | None = None

    @property
    def active(self) -> bool:
        return bool(self._run_id)

    def start(self) -> None:
        if self.active or self.matched:
            return
        self._next_attempt()

    def stop(self) -> None:
        self._cancel()
        self._run_id = b""
        self.matched = False
        self.nmk = None

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _later(self, delay_s: float, action: Callable[[], None]) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(delay_s, action)

    def _send(self, dst: bytes, message: mme.Mme) -> None:
        self._line.from_ev(mme.encode_frame(dst, self.mac, message))

    def _next_attempt(self) -> None:
        self._attempt += 1
        self._run_id = self.mac + self._attempt.to_bytes(2, "big")
        self._params = None
        self._send_parm()

    def _send_parm(self) -> None:
        self._send(mme.BROADCAST, mme.CmSlacParmReq(0, 0, self._run_id))
        self._later(PARM_RETRY_S, self._send_parm)

    def receive(self, frame: mme.Frame) -> None:
        m = frame.mme
        if not self.active:
            return
        if isinstance(m, mme.CmSlacParmCnf) and m.run_id == self._run_id and not self._params:
            self._params, self._evse_mac = m, frame.src
            for _ in range(START_ATTEN_REPEAT):
                self._send(
                    mme.BROADCAST,
                    mme.CmStartAttenCharInd(
                        0, 0, m.num_sounds, m.time_out, m.resp_type, self.mac, self._run_id
                    ),
                )
            self._sound(m.num_sounds - 1)
        elif isinstance(m, mme.CmAttenCharInd) and m.run_id == self._run_id:
            average = sum(m.aag) / len(m.aag) if m.aag else 0
            if not 0 < average <= ATTEN_THRESHOLD_DB:
                event(log, logging.INFO, "sim_pev_refuses", average_db=round(average, 1))
                self._later(PARM_RETRY_S, self._next_attempt)
                return
            self._cancel()
            self._send(
                frame.src, mme.CmAttenCharRsp(0, 0, self.mac, self._run_id, bytes(17), bytes(17), 0)
            )
            self._send(
                frame.src,
                mme.CmSlacMatchReq(
                    0,
                    0,
                    mme.MVF_LENGTH_MATCH_REQ,
                    bytes(17),
                    self.mac,
                    bytes(17),
                    frame.src,
                    self._run_id,
                ),
            )
        elif isinstance(m, mme.CmSlacMatchCnf) and m.run_id == self._run_id:
            self.nmk = m.nmk  # CM_SET_KEY on its own modem: it joins the EVSE's AVLN
            self.matched = True
            self._run_id = b""
            self._cancel()
            event(log, logging.INFO, "sim_pev_matched", nid=m.nid.hex())

    def _sound(self, remaining: int) -> None:
        if not self.active:
            return
        if self.lose_sounds > 0:
            self.lose_sounds -= 1
        else:
            self._send(mme.BROADCAST, mme.CmMnbcSoundInd(0, 0, bytes(17), remaining, self._run_id))
        if remaining > 0:
            self._later(SOUND_INTERVAL_S, lambda: self._sound(remaining - 1))
        else:  # the EVSE has TT_EVSE_match_MNBC; if nothing comes, start over
            self._later(2 * PARM_RETRY_S, self._next_attempt)


class SimPowerline:
    def __init__(self, index: int) -> None:
        self.host_mac = bytes.fromhex(f"0200000ee0{index:02x}")
        self.modem_mac = bytes.fromhex(f"00b052ee00{index:02x}")
        self.host_link = _HostLink(self, self.host_mac)
        self.pev = SimPev(self, bytes.fromhex(f"02000000aa{index:02x}"))
        self.evse_nmk: bytes | None = None
        self.connected = False  # the cable is plugged in

    # the EVSE host side ------------------------------------------------------------

    def from_host(self, raw: bytes) -> None:
        try:
            frame = mme.decode_frame(raw)
        except mme.MmeError as exc:
            event(log, logging.WARNING, "sim_modem_rejected", reason=str(exc))
            return
        m = frame.mme
        reply: mme.Mme | None = None
        if isinstance(m, mme.CmSetKeyReq):
            self.evse_nmk = m.new_key
            reply = mme.CmSetKeyCnf(0x01, bytes(4), m.my_nonce, m.pid, m.prn, m.pmn, 0)
        elif isinstance(m, mme.VsSwVerReq):
            reply = mme.VsSwVerCnf(0, 0x22, "MAC-QCA7000-sim")
        elif isinstance(m, mme.VsPlLnkStatusReq):
            linked = self.connected and self.pev.nmk is not None and self.pev.nmk == self.evse_nmk
            reply = mme.VsPlLnkStatusCnf(0, 1 if linked else 0)
        elif isinstance(m, mme.VsRsDevReq):
            self.evse_nmk = None
            reply = mme.VsRsDevCnf(0)
        elif self.connected:
            self._to_ev(raw, frame)
        if reply is not None:
            self.host_link.deliver(mme.encode_frame(frame.src, self.modem_mac, reply))

    # the cable ------------------------------------------------------------------------

    def _to_ev(self, raw: bytes, frame: mme.Frame) -> None:
        if frame.dst in (self.pev.mac, mme.BROADCAST):
            asyncio.get_running_loop().call_soon(self.pev.receive, frame)

    def from_ev(self, raw: bytes) -> None:
        if not self.connected:
            return
        frame = mme.decode_frame(raw)
        loop = asyncio.get_running_loop()
        loop.call_soon(self.host_link.deliver, raw)
        if isinstance(frame.mme, mme.CmMnbcSoundInd):
            profile = mme.CmAttenProfileInd(self.pev.mac, bytes([self.pev.attenuation_db]) * 58)
            loop.call_soon(
                self.host_link.deliver, mme.encode_frame(self.host_mac, self.modem_mac, profile)
            )

    def plug(self, connected: bool) -> None:
        self.connected = connected
        if not connected:
            self.pev.stop()


class SimPlcLink:
    """The PlcLink of a simulated EVSE."""

    def __init__(self, line: SimPowerline) -> None:
        self._line = line

    @property
    def interface(self) -> str:
        return "sim"

    def frame_transport(self) -> FrameTransport | None:
        return self._line.host_link

    async def reset_modem(self) -> None:
        self._line.evse_nmk = None
