"""The Josev API contract: schemas, typed payloads, validation and error replies."""

import json
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import jsonschema
import pytest

from charger.bus import api, messages
from charger.bus.api import ApiError

UUID = "6c1f594a-3dfe-409b-8251-bceb68ad0812"


def envelope(name: str, type_: str, data: dict[str, object]) -> dict[str, object]:
    return {"id": UUID, "name": name, "type": type_, "data": data}


def test_contract_has_29_messages_in_55_forms() -> None:
    names = {name for name, _ in api.forms()}
    assert len(names) == 29 and len(api.forms()) == 55
    assert set(messages.FORMS) == api.forms()
    assert {str(n) for n in messages.Name} == names


@pytest.mark.parametrize("form", sorted(messages.FORMS))
def test_typed_payload_matches_schema(form: tuple[str, str]) -> None:
    schema = api.schema(*form)
    data_schema = schema["properties"]["data"]
    typed = messages.FORMS[form].shape
    assert set(get_type_hints(typed)) == set(data_schema.get("properties", {}))
    assert set(typed.__required_keys__) == set(data_schema.get("required", []))  # type: ignore[attr-defined]
    assert messages.FORMS[form].topics == tuple(schema["x-topics"])


def test_generated_bus_module_is_in_sync_with_the_schemas() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.busgen", "--check"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_form_makes_and_answers_its_messages() -> None:
    request = messages.CP_PWM_REQUEST.make(
        {"evse_id": "E", "hlc": True, "error_state": False, "fault_state": False}
    )
    assert (request.name, request.type, request.topic) == ("cp_pwm", "request", "josev/cs")
    api.validate(request.envelope())
    answer = messages.CP_PWM_RESPONSE.answer(request, {"evse_id": "E", "status": "valid"})
    assert (answer.id, answer.topic, answer.type) == (request.id, "cs/josev", "response")
    event = messages.NOTIFY_EVENT_UPDATE.make(
        {"event_id": 1, "timestamp": api.timestamp()}, messages.Topic.CS_JOSEV
    )
    assert event.topic == "cs/josev"


@pytest.mark.parametrize("form", sorted(api.forms()))
def test_schemas_are_valid_draft7(form: tuple[str, str]) -> None:
    jsonschema.Draft7Validator.check_schema(api.schema(*form))


def test_reference_examples_validate() -> None:
    api.validate(envelope("cs_status_and_limits", "request", {}))
    api.validate(envelope("reset", "response", {"status": "accepted"}))
    api.validate(
        envelope(
            "cp_pwm",
            "request",
            {
                "evse_id": "DE*SEV*E1",
                "hlc": False,
                "current": 16.0,
                "error_state": False,
                "fault_state": False,
            },
        )
    )
    api.validate(
        envelope("cp_status", "update", {"evse_id": "DE*SEV*E1", "connector_id": 1, "state": "B1"})
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([], "message is a JSON list, expected an object"),
        ({"name": "nope", "type": "request"}, "unknown message 'nope' of type 'request'"),
        (envelope("cp_status", "request", {}), "unknown message 'cp_status' of type 'request'"),
        (
            {"name": "reset", "type": "request", "data": {}},
            'reset.request: message: "id" is a required property',
        ),
        (
            envelope("cp_status", "update", {"evse_id": "E", "connector_id": 1, "state": "G"}),
            "cp_status.update: data.state: ",
        ),
        (
            envelope(
                "cp_pwm",
                "request",
                {
                    "evse_id": "E",
                    "hlc": True,
                    "current": 6.0,
                    "error_state": False,
                    "fault_state": False,
                },
            ),
            'cp_pwm.request: data: {"required":["current"]} is not allowed',
        ),
        (
            envelope(
                "cp_pwm",
                "request",
                {"evse_id": "E", "hlc": False, "error_state": False, "fault_state": False},
            ),
            'cp_pwm.request: data: "current" is a required property',
        ),
        (
            {**envelope("reset", "request", {}), "id": "not-a-uuid"},
            'reset.request: message.id: "not-a-uuid" does not match',
        ),
    ],
)
def test_invalid_messages_are_rejected_with_a_reason(message: object, reason: str) -> None:
    with pytest.raises(ApiError) as info:
        api.validate(message)
    assert str(info.value).startswith(reason)


def test_parse_checks_the_topic() -> None:
    raw = json.dumps(envelope("reset", "request", {})).encode()
    assert api.parse(raw, "josev/cs").origin == "mqtt"
    with pytest.raises(ApiError, match="not allowed on topic cs/josev"):
        api.parse(raw, "cs/josev")
    with pytest.raises(ApiError, match="payload is not JSON"):
        api.parse(b"{oops", "josev/cs")


def test_error_response_uses_the_forms_own_error_status() -> None:
    bad = envelope("cp_pwm", "request", {"evse_id": "E", "hlc": "yes"})
    reply = api.error_response(bad, "josev/cs", "hlc must be a boolean")
    assert reply is not None and reply.topic == "cs/josev" and reply.id == UUID
    assert dict(reply.data) == {
        "status": "invalid",
        "evse_id": "E",
        "info": "hlc must be a boolean",
    }
    reset = api.error_response(envelope("reset", "request", {"evse_id": 3}), "josev/cs", "x")
    assert reset is not None and dict(reset.data) == {"status": "rejected"}


def test_no_error_response_for_updates_or_unknown_names() -> None:
    assert api.error_response(envelope("cp_status", "update", {}), "cs/josev", "x") is None
    assert api.error_response(envelope("nope", "request", {}), "josev/cs", "x") is None
    assert api.error_response({"name": "reset", "type": "request"}, "josev/cs", "x") is None


def test_timestamp_matches_the_api_pattern() -> None:
    stamp = api.timestamp()
    api.validate(envelope("meter_values", "request", {"timestamp": stamp}))
    assert stamp.endswith("Z") and len(stamp) == 24


def test_validation_does_not_modify_the_message() -> None:
    message = envelope("cs_status_and_limits", "request", {})
    before = json.dumps(message, sort_keys=True)
    api.validate(message)
    assert json.dumps(message, sort_keys=True) == before
