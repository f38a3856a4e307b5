"""OCPP 2.0.1 transactions (E01-E15), sans-IO: facts about each EVSE in, TransactionEvent
request payloads out.

A transaction starts when the first of the TxStartPoint conditions becomes true (the
event: a plug-in, an authorization, the power path closing, the EV starting to take
energy; not a condition that merely still holds) and ends when one of the TxStopPoint
conditions stops being true (E01, E06). After a transaction ended with the EV still
plugged in, the EVSE stays idle until the EV leaves or a new authorization comes. Each event
carries the transaction's next seqNo; the first event after an authorization carries the
idToken; `offline` marks events that happened while the CSMS was unreachable. The caller
commits every payload to the durable outbox, with `snapshot()`, before sending it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

START_POINTS = (
    "ParkingBayOccupied",
    "EVConnected",
    "Authorized",
    "DataSigned",
    "PowerPathClosed",
    "EnergyTransfer",
)


@dataclass(frozen=True, slots=True)
class TxSettings:
    start_points: frozenset[str] = frozenset({"EVConnected", "Authorized"})
    stop_points: frozenset[str] = frozenset({"EVConnected", "Authorized"})


@dataclass(slots=True)
class _Evse:
    ocpp_id: int
    connector_id: int
    ev_connected: bool = False
    authorized: bool = False
    id_token: dict[str, Any] | None = None
    token_sent: bool = False
    power_path_closed: bool = False
    pwm_offered: bool = False
    ev_drawing: bool = False
    energy_wh: float | None = None
    transaction_id: str | None = None
    seq_no: int = 0
    remote_start_id: int | None = None
    charging_state: str = "Idle"
    has_charged: bool = False
    stop_reason: str | None = None  # why the driver or CSMS stopped it, for a later Ended
    start_energy_wh: float | None = None  # the register when the transaction started
    power_path_opened: bool = False  # in this step, not yet settled
    power_path_closed_now: bool = False  # in this step, not yet settled
    transferring: bool = False  # energy flowed at the last settle (EnergyTransfer edge)
    restored: bool = False  # reopened from disk after a power cut, to be ended
    # a stop that ends the transaction while energy may still flow: (trigger, reason),
    # the Ended event waits for the power path to open (`finish`)
    pending_end: tuple[str, str] | None = None
    session_over: bool = False  # a transaction ended and the EV is still plugged in


@dataclass(slots=True)
class TransactionManager:
    settings: TxSettings
    connectors: list[tuple[int, int]]  # (OCPP EVSE id, connector id)
    now: Callable[[], str]
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    online: bool = False
    # (EVSE, "Started" | "Updated" | "Ended" | "Clock", reading context) -> SampledValues;
    # without one, events carry the energy register only.
    sampler: Callable[[int, str, str], list[dict[str, Any]]] | None = None
    # meter values gathered during the transaction for its Ended event (TxEndedInterval)
    ended_values: Callable[[int], list[dict[str, Any]]] | None = None

    _evses: dict[int, _Evse] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._evses = {e: _Evse(e, c) for e, c in self.connectors}

    # ------------------------------------------------------------------ queries

    def transaction_id(self, evse: int) -> str | None:
        return self._evses[evse].transaction_id

    def snapshot(self, evse: int) -> dict[str, Any]:
        """What must survive a reboot for this EVSE's open transaction."""
        e = self._evses[evse]
        return {
            "seq_no": e.seq_no,
            "charging_state": e.charging_state,
            "id_token": e.id_token,
            "energy_wh": e.energy_wh,
        }

    def id_token(self, evse: int) -> dict[str, Any] | None:
        return self._evses[evse].id_token

    def ending(self, evse: int) -> bool:
        """A stop has ended the transaction; its Ended event waits for `finish`."""
        return self._evses[evse].pending_end is not None

    def finish(self, evse: int) -> list[dict[str, Any]]:
        """The Ended event of a stopped transaction, once the power path has opened (and
        the caller has fed the reading taken after it): its energy is all delivered and
        its chargingState no longer Charging."""
        e = self._evses[evse]
        if e.pending_end is None:
            return []
        (trigger, reason), e.pending_end = e.pending_end, None
        return self._end(e, trigger, reason)

    def awaiting_cable(self, evse: int) -> bool:
        """Authorized, and the EV not plugged in yet (EVConnectionTimeOut runs)."""
        e = self._evses[evse]
        return e.authorized and not e.ev_connected

    def delivered_wh(self, evse: int) -> float:
        """Energy delivered in the open transaction, as far as the meter told."""
        e = self._evses[evse]
        if e.transaction_id is None or e.energy_wh is None:
            return 0.0
        return e.energy_wh - (e.start_energy_wh if e.start_energy_wh is not None else e.energy_wh)

    # ------------------------------------------------------------------ facts

    def ev_connected(self, evse: int, connected: bool) -> list[dict[str, Any]]:
        e = self._evses[evse]
        if e.ev_connected == connected:
            return []
        e.ev_connected = connected
        if connected:
            return self._maybe_start(e, "CablePluggedIn", "EVConnected")
        e.session_over = False
        e.power_path_closed = e.ev_drawing = e.pwm_offered = False
        if e.pending_end is not None:  # stopped first, then unplugged: the stop's reason
            return self.finish(evse)
        # StopTxOnEVSideDisconnect (default true): unplugging ends the transaction (E10).
        return self._end(e, "EVCommunicationLost", "EVDisconnected")

    def authorized(
        self, evse: int, id_token: dict[str, Any], remote_start_id: int | None = None
    ) -> list[dict[str, Any]]:
        e = self._evses[evse]
        e.authorized, e.id_token, e.token_sent = True, id_token, False
        e.remote_start_id, e.session_over = remote_start_id, False
        trigger = "RemoteStart" if remote_start_id is not None else "Authorized"
        if e.transaction_id is None:
            return self._maybe_start(e, trigger, "Authorized")
        return self._update(e, trigger)

    def stop_authorized(
        self, evse: int, *, remote: bool = False, reason: str = "Local"
    ) -> list[dict[str, Any]]:
        """The driver (same token, one of its group, a master pass) or the CSMS asked to stop."""
        trigger, reason = ("RemoteStop", "Remote") if remote else ("StopAuthorized", reason)
        return self._deauthorize(evse, trigger, reason)

    def deauthorized(self, evse: int) -> list[dict[str, Any]]:
        """The CSMS said the transaction's idToken is not valid (StopTxOnInvalidId, E06)."""
        return self._deauthorize(evse, "Deauthorized", "DeAuthorized")

    def connection_timed_out(self, evse: int) -> list[dict[str, Any]]:
        """E03.FR.05: no cable within EVConnectionTimeOut of the authorization."""
        e = self._evses[evse]
        if e.ev_connected or not e.authorized:
            return []
        if e.transaction_id is None:
            e.authorized, e.id_token, e.remote_start_id = False, None, None
            return []
        return self._deauthorize(evse, "EVConnectTimeout", "Timeout")

    def _deauthorize(self, evse: int, trigger: str, reason: str) -> list[dict[str, Any]]:
        e = self._evses[evse]
        if e.transaction_id is None:
            return []
        e.authorized, e.stop_reason = False, reason
        if "Authorized" in self.settings.stop_points:
            if e.power_path_closed:  # defect 2: not before the energy has stopped
                e.pending_end = (trigger, reason)
                return []
            return self._end(e, trigger, reason)
        # the transaction ends with the power path or energy transfer the stop ends
        return self._update(e, trigger)

    def end_for_reset(self, evse: int) -> list[dict[str, Any]]:
        """B12.FR.02/.04: an Immediate reset ends the transaction first. While energy may
        flow the Ended event waits for the power path to open (`finish`), so it carries
        the state after the stop (EVConnected, TC_B_22/B_27 step 3)."""
        e = self._evses[evse]
        if e.transaction_id is None:
            return []
        e.authorized, e.pending_end = False, None
        if e.power_path_closed:
            e.pending_end = ("ResetCommand", "ImmediateReset")
            return []
        return self._end(e, "ResetCommand", "ImmediateReset")

    def trigger(self, evse: int) -> list[dict[str, Any]]:
        """F06: a TriggerMessage for TransactionEvent."""
        e = self._evses[evse]
        if e.transaction_id is None:
            return []
        return [self._event(e, "Updated", "Trigger", with_meter=True)]

    def power_path(self, evse: int, closed: bool) -> list[dict[str, Any]]:
        e = self._evses[evse]
        if e.power_path_closed == closed:
            return []
        e.power_path_closed = closed
        # Both are judged at settle(), with the step's other facts in: a closed power
        # path starts the transaction (TxStartPoint PowerPathClosed) with the charging
        # state the CP state of the same step gives (the EV draws: Charging, TC_E_01); an
        # opened one ends it, and the CP state of the same step may say the EV is gone,
        # the better reason (E06.FR.06, E37).
        e.power_path_closed_now = closed
        e.power_path_opened = not closed
        return []

    def cp_state(self, evse: int, state: str, *, held: bool = False) -> list[dict[str, Any]]:
        """PWM on (x2) and EV wanting energy (C/D) refine the charging state. A plug-in
        is reported as such (EVConnected) even when the CS offered energy in the same
        step (a session authorized first: B2 at once); the offer and the EV's answer
        follow as a ChargingStateChanged at `settle` (E02, TC_E_04, TC_E_38). `held`: the
        state the station started in (after a reboot), which is no plug-in: the EV is
        connected, but the EVConnected condition did not become true now (E01)."""
        e = self._evses[evse]
        connected = state[0] in "BCD"
        if held and connected and not e.ev_connected and e.transaction_id is None:
            # the state the station started in: the EV was there before, no plug-in now
            e.ev_connected = e.session_over = True
            e.pwm_offered, e.ev_drawing = state.endswith("2"), state[0] in "CD"
            return []
        events = []
        if connected and not e.ev_connected:
            e.pwm_offered = e.ev_drawing = False
            events = self.ev_connected(evse, True)
        e.pwm_offered = state.endswith("2")
        e.ev_drawing = state[0] in "CD"
        return events + self.ev_connected(evse, connected)

    def settle(self, evse: int) -> list[dict[str, Any]]:
        """One ChargingStateChanged once a step's facts are all in: the CS reports the
        contactor and the CP state of one step one after the other, and they must not
        show as two changes."""
        e = self._evses[evse]
        opened, e.power_path_opened = e.power_path_opened, False
        closed, e.power_path_closed_now = e.power_path_closed_now, False
        if e.pending_end is not None:
            return []  # ended already; the Ended event comes with `finish`
        if closed and e.power_path_closed and e.transaction_id is None:
            started = self._maybe_start(e, "ChargingStateChanged", "PowerPathClosed")
            if started:
                e.transferring = e.power_path_closed and e.ev_drawing
                return started
        transferring = e.power_path_closed and e.ev_drawing
        started_transfer, e.transferring = transferring and not e.transferring, transferring
        if opened and "PowerPathClosed" in self.settings.stop_points and e.transaction_id:
            return self._end(e, "ChargingStateChanged", e.stop_reason or "StoppedByEV")
        if e.transaction_id is None:  # TxStartPoint EnergyTransfer: the EV took energy
            if not started_transfer:
                return []
            return self._maybe_start(e, "ChargingStateChanged", "EnergyTransfer")
        if self._charging_state(e) == e.charging_state:
            return []
        if (
            "EnergyTransfer" in self.settings.stop_points
            and e.charging_state == "Charging"  # E06.FR.07: the energy transfer ended
        ):
            return self._end(e, "ChargingStateChanged", e.stop_reason or "StoppedByEV")
        return self._update(e, "ChargingStateChanged")

    def meter(self, evse: int, energy_wh: float, *, periodic: bool) -> list[dict[str, Any]]:
        e = self._evses[evse]
        e.energy_wh = energy_wh
        if e.transaction_id is not None and e.start_energy_wh is None:
            e.start_energy_wh = energy_wh  # the first reading of the transaction
        if periodic and e.transaction_id is not None:
            return [self._event(e, "Updated", "MeterValuePeriodic", with_meter=True)]
        return []

    def clock(self, evse: int, timestamp: str | None = None) -> list[dict[str, Any]]:
        """J02: a clock-aligned reading during a transaction; `timestamp`: the boundary's
        (the event's and its sample's time), else now."""
        e = self._evses[evse]
        if e.transaction_id is None:
            return []
        return [self._event(e, "Updated", "MeterValueClock", with_meter=True, timestamp=timestamp)]

    def restore(
        self, evse: int, transaction_id: str, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """After a reboot: the transaction that was open ends (the power was lost)."""
        e = self._evses[evse]
        e.transaction_id, e.seq_no = transaction_id, int(state["seq_no"])
        e.charging_state = str(state["charging_state"])
        e.id_token, e.energy_wh, e.token_sent = state.get("id_token"), state.get("energy_wh"), True
        e.restored = True
        try:
            return self._end(e, "AbnormalCondition", "PowerLoss", keep_state=True)
        finally:
            e.restored = False

    # ------------------------------------------------------------------ rules

    def _maybe_start(self, e: _Evse, trigger: str, became_true: str) -> list[dict[str, Any]]:
        """`became_true`: the start condition this event made true (E01: the first of
        the TxStartPoint conditions to become true starts the transaction)."""
        if e.transaction_id is not None:
            return self._update(e, trigger)
        if e.session_over or became_true not in self.settings.start_points:
            return []
        e.transaction_id, e.seq_no, e.start_energy_wh = self.new_id(), 0, e.energy_wh
        e.charging_state = self._charging_state(e)
        return [self._event(e, "Started", trigger, with_meter=True)]

    def _update(self, e: _Evse, trigger: str) -> list[dict[str, Any]]:
        if e.transaction_id is None:
            return []
        e.charging_state = self._charging_state(e)
        return [self._event(e, "Updated", trigger)]

    def _end(
        self, e: _Evse, trigger: str, reason: str, *, keep_state: bool = False
    ) -> list[dict[str, Any]]:
        if e.transaction_id is None:
            return []
        if not keep_state:
            e.charging_state = self._charging_state(e)
        event = self._event(e, "Ended", trigger, with_meter=True, stopped_reason=reason)
        e.transaction_id, e.authorized, e.id_token, e.remote_start_id = None, False, None, None
        e.has_charged, e.stop_reason, e.session_over = False, None, e.ev_connected
        return [event]

    def _charging_state(self, e: _Evse) -> str:
        """OCPP ChargingStateEnumType: Charging while energy flows to an EV that wants it;
        SuspendedEV while the EVSE offers (PWM on) and the EV does not take (also an EV not
        ready yet, E38); SuspendedEVSE when the EVSE withdrew its offer from an authorized
        session that has charged; otherwise EVConnected (before the offer, and after the
        stop: not authorized to resume)."""
        if not e.ev_connected:
            return "Idle"
        if e.power_path_closed and e.ev_drawing:
            e.has_charged = True
            return "Charging"
        if e.pwm_offered:
            return "SuspendedEV"
        if e.authorized and (e.has_charged or e.power_path_closed):
            return "SuspendedEVSE"
        return "EVConnected"

    def _event(
        self,
        e: _Evse,
        kind: str,
        trigger: str,
        *,
        with_meter: bool = False,
        stopped_reason: str | None = None,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        assert e.transaction_id is not None
        info: dict[str, Any] = {
            "transactionId": e.transaction_id,
            "chargingState": e.charging_state,
        }
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        if e.remote_start_id is not None and (kind == "Started" or trigger == "RemoteStart"):
            info["remoteStartId"] = e.remote_start_id
        payload: dict[str, Any] = {
            "eventType": kind,
            "timestamp": timestamp or self.now(),
            "triggerReason": trigger,
            "seqNo": e.seq_no,
            "transactionInfo": info,
            "evse": {"id": e.ocpp_id, "connectorId": e.connector_id},
        }
        e.seq_no += 1
        if not self.online:
            payload["offline"] = True
        if e.id_token is not None and not e.token_sent:
            payload["idToken"] = e.id_token
            e.token_sent = True
        if with_meter:
            values = []
            if kind == "Ended" and self.ended_values is not None:
                values = self.ended_values(e.ocpp_id)
            samples = self._samples(e, kind, trigger)
            if samples:
                values.append({"timestamp": payload["timestamp"], "sampledValue": samples})
            if values:
                payload["meterValue"] = values
        return payload

    def _samples(self, e: _Evse, kind: str, trigger: str) -> list[dict[str, Any]]:
        which = "Clock" if trigger == "MeterValueClock" else kind
        context = {
            "Started": "Transaction.Begin",
            "Ended": "Transaction.End",
            "Clock": "Sample.Clock",
        }.get(which, "Trigger" if trigger == "Trigger" else "Sample.Periodic")
        if self.sampler is not None:
            samples = self.sampler(e.ocpp_id, which, context)
            if samples or not e.restored:
                return samples
            # after a power cut no reading is in memory: the last one persisted with the
            # transaction is what the meter said last
        if e.energy_wh is None:
            return []
        return [
            {
                "value": round(e.energy_wh, 3),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
            }
        ]
