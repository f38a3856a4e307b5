"""TransactionEvent generation: start and stop points, seqNo, idToken, offline, restore.
Every payload produced is validated against the official TransactionEventRequest schema."""

from __future__ import annotations

import itertools
from typing import Any

from charger.protocols.ocpp import rpc
from charger.protocols.ocpp.transactions import TransactionManager, TxSettings

TOKEN = {"idToken": "04A1B2C3", "type": "ISO14443"}


def manager(start: set[str] | None = None, stop: set[str] | None = None) -> TransactionManager:
    ids = (f"tx-{n}" for n in itertools.count(1))
    settings = TxSettings(
        start_points=frozenset(start or {"EVConnected", "Authorized"}),
        stop_points=frozenset(stop or {"EVConnected", "Authorized"}),
    )
    return TransactionManager(
        settings,
        [(1, 1)],
        now=lambda: "2026-11-22T03:00:00Z",
        new_id=lambda: next(ids),
        online=True,
    )


def check(events: list[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    for payload in events:
        rpc.validate("TransactionEvent", "Request", payload)
    return [
        (e["eventType"], e["triggerReason"], e["seqNo"], e["transactionInfo"]["chargingState"])
        for e in events
    ]


def test_cable_first_then_token_then_charge_then_stop_by_token() -> None:
    tx = manager()
    assert check(tx.cp_state(1, "B1")) == [("Started", "CablePluggedIn", 0, "EVConnected")]
    authorized = tx.authorized(1, TOKEN)
    assert check(authorized) == [("Updated", "Authorized", 1, "EVConnected")]
    assert authorized[0]["idToken"] == TOKEN
    # PWM offered, the EV not taking (not ready yet, E38)
    assert check(tx.cp_state(1, "B2") + tx.settle(1)) == [
        ("Updated", "ChargingStateChanged", 2, "SuspendedEV")
    ]
    # the CS reports the contactor, then C2, in one step: one change once settled
    events = tx.power_path(1, True) + tx.cp_state(1, "C2") + tx.settle(1)
    assert check(events) == [("Updated", "ChargingStateChanged", 3, "Charging")]
    assert "idToken" not in events[0]  # sent once, with the authorization
    # energy still flows: the Ended event waits until the power path has opened, with
    # the reading taken after it (OCPP issue, defect 2)
    assert tx.stop_authorized(1) == [] and tx.ending(1)
    assert tx.power_path(1, False) + tx.cp_state(1, "B1") + tx.settle(1) == []
    tx.meter(1, 1234.5, periodic=False)  # the fresh reading
    ended = tx.finish(1)
    assert check(ended) == [("Ended", "StopAuthorized", 4, "EVConnected")]
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Local"
    assert ended[0]["meterValue"][0]["sampledValue"][0]["value"] == 1234.5
    assert tx.transaction_id(1) is None and check(tx.cp_state(1, "A1")) == []


def test_token_first_then_cable_and_unplug_ends() -> None:
    tx = manager()
    started = tx.authorized(1, TOKEN)
    assert check(started) == [("Started", "Authorized", 0, "Idle")]
    assert (
        started[0]["idToken"] == TOKEN and started[0]["transactionInfo"]["transactionId"] == "tx-1"
    )
    assert check(tx.cp_state(1, "B1")) == [("Updated", "CablePluggedIn", 1, "EVConnected")]
    ended = tx.cp_state(1, "A1")
    assert check(ended) == [("Ended", "EVCommunicationLost", 2, "Idle")]
    assert ended[0]["transactionInfo"]["stoppedReason"] == "EVDisconnected"


def test_start_at_power_path_closed_with_remote_start() -> None:
    tx = manager(start={"PowerPathClosed"}, stop={"EVConnected"})
    assert tx.cp_state(1, "B1") == [] and tx.authorized(1, TOKEN, remote_start_id=42) == []
    started = tx.cp_state(1, "C2") + tx.power_path(1, True) + tx.settle(1)
    assert check(started) == [("Started", "ChargingStateChanged", 0, "Charging")]
    assert started[0]["transactionInfo"]["remoteStartId"] == 42
    assert started[0]["idToken"] == TOKEN
    assert check(tx.stop_authorized(1, remote=True)) == [("Updated", "RemoteStop", 1, "Charging")]
    # the CS removes the PWM, the EV stops drawing, the contactor opens: the session is
    # over but the EV still plugged in (EVConnectedPostSession)
    events = tx.cp_state(1, "C1") + tx.settle(1)  # PWM off, the EV still draws
    events += tx.power_path(1, False) + tx.cp_state(1, "B1") + tx.settle(1)
    assert check(events) == [("Updated", "ChargingStateChanged", 2, "EVConnected")]
    assert tx.transaction_id(1) is not None  # TxStopPoint EVConnected: still plugged in


def test_a_power_path_closed_start_takes_the_charging_state_of_its_whole_step() -> None:
    """Finding 12 (TC_E_01): the CS reports the contactor closed before the C2 of the
    same step; the Started event is judged once both are in: Charging, not SuspendedEV."""
    tx = manager(start={"PowerPathClosed"}, stop={"Authorized"})
    tx.authorized(1, TOKEN)
    assert tx.cp_state(1, "B2") + tx.settle(1) == []
    started = tx.power_path(1, True) + tx.cp_state(1, "C2") + tx.settle(1)
    assert check(started) == [("Started", "ChargingStateChanged", 0, "Charging")]
    assert tx.settle(1) == []  # and no second change for the same facts


def test_a_plug_in_with_the_offer_in_the_same_step_is_reported_as_a_plug_in() -> None:
    """Finding 12 (TC_E_04, E_38): authorized first, the CS offers energy in the step
    that sees the EV (B2 at once); the CablePluggedIn event says EVConnected, the offer
    the EV does not take yet a ChargingStateChanged SuspendedEV after it."""
    for start in ({"EVConnected", "Authorized"}, {"EVConnected"}):
        tx = manager(start=start)
        tx.authorized(1, TOKEN)
        events = tx.cp_state(1, "B2") + tx.settle(1)
        kind = "Updated" if "Authorized" in start else "Started"
        assert check(events) == [
            (kind, "CablePluggedIn", events[0]["seqNo"], "EVConnected"),
            ("Updated", "ChargingStateChanged", events[0]["seqNo"] + 1, "SuspendedEV"),
        ]


def test_the_state_the_station_started_in_is_no_plug_in() -> None:
    """Finding 9: an EV found plugged in at start-up (held) starts no transaction by
    EVConnected; an authorization does, and the next real plug-in too."""
    tx = manager()
    assert tx.cp_state(1, "B1", held=True) == []
    assert tx.settle(1) == []
    assert check(tx.authorized(1, TOKEN)) == [("Started", "Authorized", 0, "EVConnected")]
    tx = manager()
    assert tx.cp_state(1, "B1", held=True) == []
    assert tx.cp_state(1, "A1") == []
    assert check(tx.cp_state(1, "B1")) == [("Started", "CablePluggedIn", 0, "EVConnected")]


def charging(tx: TransactionManager) -> None:
    tx.cp_state(1, "B1")
    tx.authorized(1, TOKEN)
    tx.power_path(1, True)
    tx.cp_state(1, "C2")
    tx.settle(1)


def test_energy_transfer_stop_point_ends_when_the_ev_suspends() -> None:
    tx = manager(stop={"EnergyTransfer"})
    charging(tx)
    ended = tx.cp_state(1, "B2") + tx.settle(1)
    assert check(ended) == [("Ended", "ChargingStateChanged", 3, "SuspendedEV")]
    assert ended[0]["transactionInfo"]["stoppedReason"] == "StoppedByEV"


def test_a_stop_before_the_power_path_opens_says_who_stopped() -> None:
    for stop in ({"EnergyTransfer"}, {"PowerPathClosed"}):
        tx = manager(stop=stop)
        charging(tx)
        assert check(tx.stop_authorized(1, remote=True)) == [
            ("Updated", "RemoteStop", 3, "Charging")
        ]
        ended = tx.cp_state(1, "C1") + tx.power_path(1, False) + tx.cp_state(1, "B1")
        ended += tx.settle(1)
        assert check(ended) == [("Ended", "ChargingStateChanged", 4, "EVConnected")]
        assert ended[0]["transactionInfo"]["stoppedReason"] == "Remote"


def test_no_cable_within_the_connection_timeout() -> None:
    tx = manager()  # started at Authorized: the timeout ends it
    tx.authorized(1, TOKEN)
    ended = tx.connection_timed_out(1)
    assert check(ended) == [("Ended", "EVConnectTimeout", 1, "Idle")]
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Timeout"
    late = manager(start={"EVConnected"})  # no transaction yet: the authorization lapses
    late.authorized(1, TOKEN)
    assert late.connection_timed_out(1) == []
    assert late.id_token(1) is None
    assert check(late.cp_state(1, "B1")) == [("Started", "CablePluggedIn", 0, "EVConnected")]
    plugged = manager()
    plugged.cp_state(1, "B1")
    plugged.authorized(1, TOKEN)
    assert plugged.connection_timed_out(1) == []  # the cable came in time


def test_suspended_states() -> None:
    tx = manager()
    tx.cp_state(1, "B1")
    tx.authorized(1, TOKEN)
    tx.cp_state(1, "C2")
    tx.power_path(1, True)
    tx.settle(1)
    assert check(tx.cp_state(1, "B2") + tx.settle(1))[-1][3] == "SuspendedEV"  # EV paused
    assert check(tx.power_path(1, False) + tx.cp_state(1, "B1") + tx.settle(1))[-1][3] == (
        "SuspendedEVSE"
    )


def test_offline_events_are_flagged_and_meter_values_included() -> None:
    tx = manager()
    tx.online = False
    tx.meter(1, 1000.0, periodic=False)
    started = tx.cp_state(1, "B1")
    assert started[0]["offline"] is True
    assert started[0]["meterValue"][0]["sampledValue"][0] == {
        "value": 1000.0,
        "context": "Transaction.Begin",
        "measurand": "Energy.Active.Import.Register",
    }
    tx.online = True
    periodic = tx.meter(1, 1500.0, periodic=True)
    assert check(periodic) == [("Updated", "MeterValuePeriodic", 1, "EVConnected")]
    assert "offline" not in periodic[0]
    assert periodic[0]["meterValue"][0]["sampledValue"][0]["value"] == 1500.0


def test_restore_after_power_loss_continues_seq_no() -> None:
    before = manager()
    before.cp_state(1, "B1")
    before.authorized(1, TOKEN)
    snapshot = before.snapshot(1)
    after = manager()
    ended = after.restore(1, "tx-1", snapshot)
    assert check(ended) == [("Ended", "AbnormalCondition", 2, "EVConnected")]
    assert ended[0]["transactionInfo"] == {
        "transactionId": "tx-1",
        "chargingState": "EVConnected",
        "stoppedReason": "PowerLoss",
    }
    assert "idToken" not in ended[0]  # it went out before the reboot


def test_after_a_stop_the_plugged_in_ev_starts_nothing_until_unplug_or_authorization() -> None:
    """E01: EVConnected starts a transaction on the plug-in event, not while the EV stays
    plugged in; after a stop the EVSE is idle until the EV leaves or a new authorization."""
    for stop in (
        lambda tx: tx.stop_authorized(1, remote=True),
        lambda tx: tx.stop_authorized(1),
        lambda tx: tx.deauthorized(1),
    ):
        tx = manager()
        tx.cp_state(1, "B1")
        tx.authorized(1, TOKEN)
        tx.power_path(1, True)
        tx.cp_state(1, "C2")
        tx.settle(1)
        assert stop(tx) == [] and tx.ending(1)
        # the CS opens the contactor, the EV goes back to B, the PWM stops: no new start
        after = tx.power_path(1, False) + tx.cp_state(1, "B2") + tx.settle(1)
        assert [e["eventType"] for e in tx.finish(1)] == ["Ended"]
        after += tx.cp_state(1, "B1") + tx.settle(1) + tx.meter(1, 1200.0, periodic=True)
        assert after == [] and tx.transaction_id(1) is None
        # a new authorization starts the next transaction, with its token
        started = tx.authorized(1, TOKEN)
        assert check(started) == [("Started", "Authorized", 0, "EVConnected")]
        assert started[0]["idToken"] == TOKEN


def test_after_a_stop_the_next_plug_in_starts_again() -> None:
    tx = manager()
    tx.cp_state(1, "B1")
    tx.stop_authorized(1, remote=True)  # nothing to stop yet: ends the cable-only transaction
    assert tx.transaction_id(1) is None and tx.cp_state(1, "B1") + tx.settle(1) == []
    assert tx.cp_state(1, "A1") == []
    assert check(tx.cp_state(1, "B1")) == [("Started", "CablePluggedIn", 0, "EVConnected")]


def test_energy_transfer_start_point_starts_on_the_first_energy_only() -> None:
    tx = manager(start={"EnergyTransfer"}, stop={"EVConnected"})
    tx.cp_state(1, "B2")
    assert tx.power_path(1, True) + tx.settle(1) == []
    assert check(tx.cp_state(1, "C2") + tx.settle(1)) == [
        ("Started", "ChargingStateChanged", 0, "Charging")
    ]


def test_after_a_stop_a_power_path_closing_again_starts_nothing() -> None:
    tx = manager(start={"PowerPathClosed"}, stop={"Authorized"})
    tx.cp_state(1, "B1")
    tx.authorized(1, TOKEN)
    assert [e["eventType"] for e in tx.power_path(1, True) + tx.settle(1)] == ["Started"]
    assert tx.stop_authorized(1) == []
    assert tx.power_path(1, False) + tx.settle(1) == []
    assert [e["eventType"] for e in tx.finish(1)] == ["Ended"]
    assert tx.power_path(1, True) + tx.settle(1) == []
    tx.power_path(1, False)
    assert tx.authorized(1, TOKEN) == []  # authorized again: the next closing starts
    assert [e["eventType"] for e in tx.power_path(1, True) + tx.settle(1)] == ["Started"]


def test_the_power_loss_end_carries_the_last_persisted_reading() -> None:
    """Reliability issue 9: after kill -9 no reading is in memory; the Ended event of the
    restored transaction carries the energy persisted with it."""
    tx = manager()
    tx.sampler = lambda evse, which, context: []  # nothing read since the restart
    ended = tx.restore(1, "tx-9", {"seq_no": 4, "charging_state": "Charging", "energy_wh": 35.0})
    assert check(ended) == [("Ended", "AbnormalCondition", 4, "Charging")]
    [value] = ended[0]["meterValue"][0]["sampledValue"]
    assert value == {
        "value": 35.0,
        "context": "Transaction.End",
        "measurand": "Energy.Active.Import.Register",
    }
    # a running transaction ends with what the sampler says, not the fallback
    tx.cp_state(1, "B1")
    assert "meterValue" not in tx.stop_authorized(1, remote=True)[0]


def test_stopped_then_unplugged_before_the_contactor_reported_ends_with_the_stop() -> None:
    tx = manager()
    tx.cp_state(1, "B1")
    tx.authorized(1, TOKEN)
    tx.power_path(1, True)
    tx.cp_state(1, "C2")
    tx.settle(1)
    assert tx.stop_authorized(1, remote=True) == []
    [ended] = tx.cp_state(1, "A1")  # the unplug comes first: the stop's reason stands
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "RemoteStop",
        "Remote",
    )
    assert ended["transactionInfo"]["chargingState"] != "Charging"
    assert tx.finish(1) == [] and not tx.ending(1)


def test_rfid_token_formats() -> None:
    """OCPP issue, defect 8: an ISO 14443 UID is 4 or 7 bytes in hex; a CSMS rejects any
    other as malformed, so the station refuses it itself."""
    from charger.protocols.ocpp.client import malformed_token

    ok = ["04A1B2C3", "04a1b2c3d4e5f6", "E004010012345678"]
    for token, kind in zip(ok, ["ISO14443", "ISO14443", "ISO15693"], strict=True):
        assert malformed_token({"idToken": token, "type": kind}) is None
    for token in ["04A1B2", "ALICE", "04A1B2C3D", "G4A1B2C3", ""]:
        problem = malformed_token({"idToken": token, "type": "ISO14443"})
        assert problem is not None and "8 or 14 hexadecimal digits" in problem
    assert malformed_token({"idToken": "anything goes", "type": "Local"}) is None
