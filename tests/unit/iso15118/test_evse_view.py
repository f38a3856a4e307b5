"""What the SECC learns about its EVSE from the bus."""

from __future__ import annotations

from charger.bus import messages
from charger.bus.messages import Topic
from charger.protocols.iso15118.evse import Authorization, EvseSetup, EvseView

EVSE = "DE*TST*E0001"


def plugged_view() -> EvseView:
    view = EvseView(EVSE)
    view.apply(
        messages.CP_STATUS_UPDATE.make({"evse_id": EVSE, "connector_id": 1, "state": "B1"}), 0
    )
    return view


def authorize(view: EvseView, status: str, evse_id: str = EVSE) -> None:
    request = messages.AUTHORIZATION_REQUEST.make(
        {"evse_id": evse_id, "token_type": "ISO14443", "id_token": "A1"}
    )
    view.apply(request, 1.0)
    assert (
        view.authorization is Authorization.PENDING
        or evse_id != EVSE
        or (view.authorization is Authorization.ACCEPTED)
    )
    view.apply(messages.AUTHORIZATION_RESPONSE.answer(request, {"status": status}), 1.1)


def test_the_drivers_authorization_request_and_its_answer() -> None:
    view = plugged_view()
    assert view.authorization is Authorization.NONE
    authorize(view, "accepted")
    assert view.authorization is Authorization.ACCEPTED


def test_a_card_refused_during_a_session_changes_nothing_but_deauthorized_stops() -> None:
    view = plugged_view()
    authorize(view, "accepted")
    authorize(view, "rejected")
    assert view.authorization is Authorization.ACCEPTED and view.stop_reason is None
    authorize(view, "deauthorized")
    assert view.authorization is Authorization.REJECTED
    assert view.stop_reason == "authorization deauthorized"


def test_answers_to_other_evses_requests_are_not_ours() -> None:
    view = plugged_view()
    authorize(view, "accepted", evse_id="DE*TST*E0002")
    assert view.authorization is Authorization.NONE


def test_a_remote_start_and_a_withdrawal_by_update() -> None:
    view = plugged_view()
    update = messages.AUTHORIZATION_UPDATE
    view.apply(update.make({"evse_id": EVSE, "status": "accepted"}), 2)
    assert view.authorization is Authorization.ACCEPTED
    view.apply(update.make({"evse_id": EVSE, "status": "rejected"}), 3)
    assert view.authorization is Authorization.REJECTED
    assert view.stop_reason == "authorization rejected"


def test_unplugging_forgets_the_session() -> None:
    view = plugged_view()
    authorize(view, "accepted")
    view.apply(messages.STOP_CHARGING_REQUEST.make({"evse_id": EVSE}, Topic.OCPP_ISO15118), 4)
    assert view.stop_reason == "remote stop (CSMS)"
    view.apply(
        messages.CP_STATUS_UPDATE.make({"evse_id": EVSE, "connector_id": 1, "state": "A1"}), 5
    )
    assert not view.plugged
    assert view.authorization is Authorization.NONE and view.stop_reason is None


def test_limits_contactor_cable_check_and_meter() -> None:
    view = plugged_view()
    limits: messages.CsStatusAndLimitsResponse = {
        "evses": [
            {"evse_id": "other", "status_code": "evse_malfunction"},
            {
                "evse_id": EVSE,
                "status_code": "evse_ready",
                "dc": {
                    "present_voltage": 401.0,
                    "present_current": 12.5,
                    "max_current": 100.0,
                    "min_current": 0.0,
                    "max_voltage": 500.0,
                    "min_voltage": 150.0,
                    "max_power": 50000.0,
                    "peak_current_ripple": 0.5,
                },
            },
        ]
    }
    assert view.apply(messages.CS_STATUS_AND_LIMITS_UPDATE.make(limits), 6)
    assert view.status_code == "evse_ready"
    assert (view.present_voltage_v(), view.present_current_a()) == (401.0, 12.5)
    view.apply(messages.CS_CONTACTOR_STATUS_UPDATE.make({"evse_id": EVSE, "status": "closed"}), 7)
    assert view.contactor == "closed"
    cable = messages.CABLE_CHECK_REQUEST.make({"evse_id": EVSE, "cable_check_action": "start"})
    response = messages.CABLE_CHECK_RESPONSE.answer(
        cable,
        {"evse_id": EVSE, "cable_check_status": "finished", "isolation_level": "valid"},
    )
    view.apply(response, 8.0)
    assert view.cable_check is not None
    assert (view.cable_check.status, view.cable_check.isolation, view.cable_check.at) == (
        "finished",
        "valid",
        8.0,
    )
    assert not view.apply(
        messages.CS_CONTACTOR_STATUS_UPDATE.make({"evse_id": "other", "status": "error"}), 9
    )
    assert view.contactor == "closed"


def test_energy_modes_offered() -> None:
    assert EvseSetup(EVSE, "x", ac_phases=3).energy_modes == ("AC_three_phase_core",)
    assert EvseSetup(EVSE, "x", ac_phases=1).energy_modes == ("AC_single_phase_core",)
    assert EvseSetup(EVSE, "x", ac_phases=0, dc=True).energy_modes == ("DC_extended",)
