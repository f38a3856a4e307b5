"""Josev API messages: the envelope, typed payloads, and validation against the JSON schemas.

The JSON Schemas in `assets/schemas/<name>.<type>.json` are the contract (one file per
message form, with the MQTT topics it travels on in ``x-topics``). The TypedDicts below
give the same shapes to mypy; a unit test keeps both in step. Validation uses compiled
validators (fastjsonschema), built lazily once per form.
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, NotRequired, TypedDict

import fastjsonschema

from charger.assets import asset_path

MessageType = Literal["request", "response", "update"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("request", "response", "update")


class ApiError(ValueError):
    """A message does not meet the Josev API contract; str() says what and where."""


@dataclass(frozen=True, slots=True)
class Message:
    """One Josev API message as it travels on topic ``sender/receiver``."""

    name: str
    type: MessageType
    data: Mapping[str, Any]
    sender: str
    receiver: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # "local" for messages made in this process, "mqtt" for ones the bridge injected.
    origin: str = "local"

    @property
    def topic(self) -> str:
        return f"{self.sender}/{self.receiver}"

    def envelope(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "data": dict(self.data)}

    def to_json(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":")).encode()

    def reply(self, data: Mapping[str, Any], topic: str | None = None) -> "Message":
        """The response to this request, on the reverse topic unless `topic` names another."""
        sender, receiver = (topic or f"{self.receiver}/{self.sender}").split("/", 1)
        return Message(self.name, "response", data, sender, receiver, id=self.id)


def request(name: str, topic: str, data: Mapping[str, Any]) -> Message:
    sender, receiver = topic.split("/", 1)
    return Message(name, "request", data, sender, receiver)


def update(name: str, topic: str, data: Mapping[str, Any]) -> Message:
    sender, receiver = topic.split("/", 1)
    return Message(name, "update", data, sender, receiver)


def timestamp(moment: datetime | None = None) -> str:
    """UTC date-time with milliseconds and a Z, the form the API's pattern accepts."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------- schemas


@cache
def schema(name: str, type_: str) -> dict[str, Any]:
    path = asset_path("schemas", f"{name}.{type_}.json")
    if not path.is_file():
        raise ApiError(f"unknown message form {name}.{type_}")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache
def forms() -> frozenset[tuple[str, str]]:
    """Every (name, type) pair the contract defines."""
    return frozenset(
        tuple(p.name.removesuffix(".json").split(".", 1))  # type: ignore[misc]
        for p in asset_path("schemas").glob("*.json")
    )


def topics(name: str, type_: str) -> tuple[str, ...]:
    return tuple(schema(name, type_)["x-topics"])


@cache
def _validator(name: str, type_: str) -> Any:
    # use_default=False: validation must never write defaults into the message
    return fastjsonschema.compile(schema(name, type_), use_default=False)


def validate(envelope: Any) -> None:
    """Checks a decoded JSON envelope against its form's schema; raises ApiError."""
    if not isinstance(envelope, dict):
        raise ApiError(f"message is a JSON {type(envelope).__name__}, expected an object")
    name, type_ = envelope.get("name"), envelope.get("type")
    if not isinstance(name, str) or type_ not in MESSAGE_TYPES:
        raise ApiError(
            f"envelope needs a string 'name' and a 'type' of {MESSAGE_TYPES}; "
            f"got name={name!r} type={type_!r}"
        )
    if (name, type_) not in forms():
        raise ApiError(f"unknown message {name!r} of type {type_!r}")
    try:
        _validator(name, type_)(envelope)
    except fastjsonschema.JsonSchemaValueException as exc:
        # fastjsonschema calls the whole document "data"; name it as the API does.
        path = exc.name or "data"
        where = "data" + path[9:] if path.startswith("data.data") else "message" + path[4:]
        raise ApiError(f"{name}.{type_}: {exc.message.replace(path, where, 1)}") from None


def parse(payload: bytes, topic: str) -> Message:
    """Decodes and validates one MQTT payload that arrived on `topic`."""
    try:
        envelope = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(f"payload is not JSON: {exc}") from None
    validate(envelope)
    if topic not in topics(envelope["name"], envelope["type"]):
        allowed = ", ".join(topics(envelope["name"], envelope["type"]))
        raise ApiError(
            f"{envelope['name']}.{envelope['type']} is not allowed on topic "
            f"{topic} (allowed: {allowed})"
        )
    sender, receiver = topic.split("/", 1)
    return Message(
        envelope["name"],
        envelope["type"],
        envelope["data"],
        sender,
        receiver,
        id=envelope["id"],
        origin="mqtt",
    )


def error_response(envelope: Any, topic: str, reason: str) -> Message | None:
    """Builds the response a malformed request should get, when its form allows one.

    The request must at least carry a known name and a usable id. The reply uses the
    first of the statuses invalid/error/rejected the response schema accepts, echoes
    `evse_id`/`connector_id` when present, and carries `reason` in `info` or `reason`.
    """
    if not isinstance(envelope, dict) or envelope.get("type") != "request":
        return None
    name, msg_id = envelope.get("name"), envelope.get("id")
    if (
        not isinstance(name, str)
        or not isinstance(msg_id, str)
        or (name, "response") not in forms()
    ):
        return None
    sender, _, receiver = topic.partition("/")
    raw_data = envelope.get("data")
    data_in: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    props = schema(name, "response")["properties"]["data"].get("properties", {})
    statuses = props.get("status", {}).get("enum", [])
    for status in ("invalid", "error", "rejected"):
        if status not in statuses:
            continue
        data: dict[str, Any] = {"status": status}
        for key in ("evse_id", "connector_id"):
            if key in props and key in data_in:
                data[key] = data_in[key]
        for key in ("info", "reason"):
            if key in props:
                data[key] = reason[:500]
        reply = Message(name, "response", data, receiver, sender, id=msg_id)
        try:
            validate(reply.envelope())
        except ApiError:
            continue
        return reply
    return None


# ---------------------------------------------------------------------------- payloads
# One TypedDict per payload shape; FORM_TYPES maps each message form to its shape.


class Empty(TypedDict):
    pass


class Phases(TypedDict):
    l1: float
    l2: float
    l3: float


class AcLimits(TypedDict):
    max_current: Phases
    nominal_voltage: float
    rcd_error: bool


class AcBptLimits(TypedDict):
    evse_max_discharge_power: Phases
    evse_min_discharge_power: Phases


class DcLimits(TypedDict):
    present_voltage: float
    present_current: float
    max_current: float
    min_current: float
    max_voltage: float
    min_voltage: float
    max_power: float
    peak_current_ripple: float
    current_reg_tolerance: NotRequired[float]
    energy_to_be_delivered: NotRequired[float]
    isolation_status: NotRequired[str]
    evse_power_ramp_limit: NotRequired[float]


class DcBptLimits(TypedDict):
    evse_max_discharge_power: float
    evse_min_discharge_power: float
    evse_max_discharge_current: float
    evse_min_discharge_current: float


class EvseStatusAndLimits(TypedDict):
    evse_id: str
    status_code: str
    ac: NotRequired[AcLimits]
    ac_bpt: NotRequired[AcBptLimits]
    dc: NotRequired[DcLimits]
    dc_bpt: NotRequired[DcBptLimits]


class CsStatusAndLimits(TypedDict):
    evses: list[EvseStatusAndLimits]


class EnergyService(TypedDict):
    connector_type: str
    control_mode: NotRequired[str]
    nominal_voltage: NotRequired[float]
    bpt_channel: NotRequired[str]
    generator_mode: NotRequired[str]
    grid_island_detection_mode: NotRequired[str]


class ConnectorServices(TypedDict):
    ac: NotRequired[EnergyService]
    ac_bpt: NotRequired[EnergyService]
    dc: NotRequired[EnergyService]
    dc_bpt: NotRequired[EnergyService]


class ParameterConnector(TypedDict):
    id: int
    services: ConnectorServices


class EvseParameters(TypedDict):
    evse_id: str
    supports_eim: bool
    network_interface: str
    connectors: list[ParameterConnector]


class CsParameters(TypedDict):
    sw_version: str
    hw_version: str
    number_of_evses: int
    parameters: list[EvseParameters]


class DeviceModelConnector(TypedDict):
    id: int
    connector_type: str


class DeviceModelEvse(TypedDict):
    ocpp_id: int
    iso15118_id: str
    power_kw: float
    supply_phases: int
    connectors: list[DeviceModelConnector]


class DeviceModelVariable(TypedDict):
    name: str
    value: str
    instance: NotRequired[str]
    unit: NotRequired[str]
    mutability: NotRequired[str]
    constant: NotRequired[bool]
    data_type: NotRequired[str]
    values_list: NotRequired[str]


class DeviceModelComponent(TypedDict):
    name: str
    variables: list[DeviceModelVariable]
    instance: NotRequired[str]
    evse_id: NotRequired[int]
    connector_id: NotRequired[int]


class DeviceModel(TypedDict):
    model: str
    vendor: str
    identity: str
    ocpp_csms_url: str
    security_profile: int
    basic_auth_password: str
    serial_number: str
    firmware_version: str
    evses: list[DeviceModelEvse]
    sim_iccid: NotRequired[str]
    sim_imsi: NotRequired[str]
    components: NotRequired[list[DeviceModelComponent]]


class CpStatus(TypedDict):
    evse_id: str
    connector_id: int
    state: str
    max_voltage: NotRequired[float]
    min_voltage: NotRequired[float]
    duty_cycle: NotRequired[float]


class CpPwmRequest(TypedDict):
    evse_id: str
    hlc: bool
    error_state: bool
    fault_state: bool
    current: NotRequired[float]


class CpPwmResponse(TypedDict):
    evse_id: str
    status: str
    info: NotRequired[str]


class SlacStatus(TypedDict):
    evse_id: str
    run_id: str
    status: str


class HlcCharging(TypedDict):
    evse_id: str
    status: bool
    action: NotRequired[str]


class Iso15118Info(TypedDict, total=False):
    session_id: str
    evcc_id: str
    evcc_mac: str
    selected_payment_option: str
    protocol: str
    stop_action: str


class Iso15118StateInfo(TypedDict):
    evse_id: str
    session_status: str
    info: NotRequired[Iso15118Info]


class CableCheckRequest(TypedDict):
    evse_id: str
    cable_check_action: str


class CableCheckResponse(TypedDict):
    evse_id: str
    cable_check_status: str
    isolation_level: NotRequired[str]


class EvLimits(TypedDict):
    maximum_voltage: float
    minimum_voltage: NotRequired[float]


class DcSetpoint(TypedDict):
    voltage: float
    charge_current: NotRequired[float]
    discharge_current: NotRequired[float]
    charge_power: NotRequired[float]
    discharge_power: NotRequired[float]


class AcSetpoint(TypedDict, total=False):
    charge_active_power: float
    discharge_active_power: float
    charge_reactive_power: float
    discharge_reactive_power: float
    charge_current: float
    discharge_current: float


class PowerElectronicsSetpoint(TypedDict):
    evse_id: str
    ev_limits: EvLimits
    is_precharge: NotRequired[bool]
    dc: NotRequired[DcSetpoint]
    ac: NotRequired[AcSetpoint]


class EvseStatus(TypedDict):
    evse_id: str
    status: str


class EvseRef(TypedDict):
    evse_id: str


class ContactorStatus(TypedDict):
    evse_id: str
    status: str
    info: NotRequired[str]


class ConnectorRequest(TypedDict):
    evse_id: str
    connector_id: float
    action: str


class ConnectorResponse(TypedDict):
    evse_id: str
    connector_id: float
    status: str
    info: NotRequired[str]


class MeterValuesRequest(TypedDict):
    timestamp: str
    evse_id: NotRequired[str]


class SignedMeterValue(TypedDict):
    measurand: str
    signed_meter_data: str
    signing_method: str
    encoding_method: str
    public_key: str


class MeterValues(TypedDict):
    timestamp: str
    voltage: Phases
    current: Phases
    power_factor: float
    frequency: float
    total_active_energy_imported: float
    total_reactive_energy_imported: float
    evse_id: NotRequired[str]
    dc_current: NotRequired[float]
    dc_voltage: NotRequired[float]
    total_active_energy_exported: NotRequired[float]
    total_reactive_energy_exported: NotRequired[float]
    soc: NotRequired[float]
    signed_meter_values: NotRequired[list[SignedMeterValue]]


class AuthorizationRequest(TypedDict):
    token_type: str
    evse_id: NotRequired[str]
    id_token: NotRequired[str]


class Status(TypedDict):
    status: str


class AuthorizationUpdate(TypedDict):
    evse_id: str
    status: str
    id_token: NotRequired[str]
    token_type: NotRequired[str]


class ProcessAuthorizedTokenResponse(TypedDict):
    status: str
    reason: NotRequired[str]


class Availability(TypedDict):
    operational_status: str
    evse_id: NotRequired[str]
    connector_id: NotRequired[int]


class ConnectorAndCharging(TypedDict):
    evse_id: str
    connector_id: float
    connector_status: str
    charging_status: str


class ResetRequest(TypedDict, total=False):
    evse_id: str


class ServiceRef(TypedDict):
    service: str


class ServiceStatus(TypedDict):
    service: str
    software_version: str
    api_version: str
    status: str


class WebsocketStatus(TypedDict):
    status: str
    identity: NotRequired[str]
    csms_url: NotRequired[str]
    security_profile: NotRequired[int]


class TransactionStatus(TypedDict):
    transaction_id: str
    status: str
    evse_id: NotRequired[str]
    id_token: NotRequired[str]
    token_type: NotRequired[str]


class DisplayAndPersonalMsg(TypedDict):
    display_msg_trigger_reason: str
    content: str
    message_state: NotRequired[str]
    total_cost: NotRequired[float]
    language: NotRequired[str]
    priority: NotRequired[str]
    evse_id: NotRequired[str]
    currency: NotRequired[str]
    qr_code_text: NotRequired[str]
    start_date_time: NotRequired[str]
    end_date_time: NotRequired[str]


class DisplayParams(TypedDict):
    evse_id: str
    present_soc: NotRequired[float]
    min_soc: NotRequired[float]
    target_soc: NotRequired[float]
    max_soc: NotRequired[float]
    charging_complete: NotRequired[bool]
    remaining_time_to_min_soc: NotRequired[float]
    remaining_time_to_max_soc: NotRequired[float]
    remaining_time_to_target_soc: NotRequired[float]
    battery_energy_capacity: NotRequired[float]
    inlet_hot: NotRequired[bool]


class CustomData(TypedDict, total=False):
    vendor_id: str


class CostUpdated(TypedDict):
    total_cost: float
    evse_id: NotRequired[str]
    currency: NotRequired[str]
    custom_data: NotRequired[CustomData]


class NotifyEvent(TypedDict):
    event_id: int
    timestamp: str
    tech_code: NotRequired[str]
    tech_info: NotRequired[str]
    transaction_id: NotRequired[str]
    evse_id: NotRequired[str]


class SetOcppNetworkConnection(TypedDict):
    csms_url: str
    security_profile: int
    identity: NotRequired[str]
    basic_auth_password: NotRequired[str]


class StatusWithReason(TypedDict):
    status: str
    reason: NotRequired[str]


class OcppMessageRequest(TypedDict):
    ocpp_version: str
    message_name: str
    payload: dict[str, Any]


class OcppMessageResponse(TypedDict):
    message_type: str
    ocpp_version: str
    payload: dict[str, Any]


class DataTransferRequest(TypedDict):
    vendor_id: str
    message_id: NotRequired[str]
    data: NotRequired[Any]


class DataTransferResponse(TypedDict):
    status: str
    data: NotRequired[Any]


FORM_TYPES: dict[tuple[str, MessageType], type] = {
    ("cs_status_and_limits", "request"): Empty,
    ("cs_status_and_limits", "response"): CsStatusAndLimits,
    ("cs_status_and_limits", "update"): CsStatusAndLimits,
    ("cs_parameters", "request"): Empty,
    ("cs_parameters", "response"): CsParameters,
    ("device_model", "request"): Empty,
    ("device_model", "response"): DeviceModel,
    ("cp_status", "update"): CpStatus,
    ("cp_pwm", "request"): CpPwmRequest,
    ("cp_pwm", "response"): CpPwmResponse,
    ("slac_status", "update"): SlacStatus,
    ("hlc_charging", "update"): HlcCharging,
    ("iso15118_state_info", "update"): Iso15118StateInfo,
    ("cable_check", "request"): CableCheckRequest,
    ("cable_check", "response"): CableCheckResponse,
    ("power_electronics_setpoint", "request"): PowerElectronicsSetpoint,
    ("power_electronics_setpoint", "response"): EvseStatus,
    ("cs_contactor_status", "request"): EvseRef,
    ("cs_contactor_status", "response"): ContactorStatus,
    ("cs_contactor_status", "update"): ContactorStatus,
    ("cs_connector", "request"): ConnectorRequest,
    ("cs_connector", "response"): ConnectorResponse,
    ("meter_values", "request"): MeterValuesRequest,
    ("meter_values", "response"): MeterValues,
    ("meter_values", "update"): MeterValues,
    ("authorization", "request"): AuthorizationRequest,
    ("authorization", "response"): Status,
    ("authorization", "update"): AuthorizationUpdate,
    ("process_authorized_token", "request"): AuthorizationRequest,
    ("process_authorized_token", "response"): ProcessAuthorizedTokenResponse,
    ("stop_charging", "request"): EvseRef,
    ("stop_charging", "response"): EvseStatus,
    ("change_availability", "request"): Availability,
    ("change_availability", "response"): Status,
    ("change_availability", "update"): Availability,
    ("connector_and_charging", "update"): ConnectorAndCharging,
    ("reset", "request"): ResetRequest,
    ("reset", "response"): Status,
    ("service_status", "request"): ServiceRef,
    ("service_status", "response"): ServiceStatus,
    ("service_status", "update"): ServiceStatus,
    ("websocket_status", "request"): Empty,
    ("websocket_status", "response"): WebsocketStatus,
    ("websocket_status", "update"): WebsocketStatus,
    ("transaction_status", "update"): TransactionStatus,
    ("display_and_personal_msg", "update"): DisplayAndPersonalMsg,
    ("display_params", "update"): DisplayParams,
    ("cost_updated", "update"): CostUpdated,
    ("notify_event", "update"): NotifyEvent,
    ("set_ocpp_network_connection", "request"): SetOcppNetworkConnection,
    ("set_ocpp_network_connection", "response"): StatusWithReason,
    ("ocpp_message", "request"): OcppMessageRequest,
    ("ocpp_message", "response"): OcppMessageResponse,
    ("data_transfer", "request"): DataTransferRequest,
    ("data_transfer", "response"): DataTransferResponse,
}
