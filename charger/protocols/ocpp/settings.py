"""What the OCPP client is configured with: the station's connectors and the settings
from the TOML config, and the device model they seed."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from charger.protocols.ocpp.device_model import DeviceModel
from charger.runtime.store import Store


@dataclass(frozen=True, slots=True)
class Connector:
    evse_id: str  # the Josev API's string EVSE id
    ocpp_evse_id: int
    connector_id: int
    connector_type: str = "cType2"
    phases: int = 3
    max_power_w: float = 11040.0  # the EVSE's rating: 16 A on three phases of 230 V


@dataclass(frozen=True, slots=True)
class OcppSettings:
    csms_url: str
    identity: str
    basic_auth_password: str
    vendor: str
    model: str
    serial_number: str
    firmware_version: str
    connectors: tuple[Connector, ...]
    security_profile: int = 1
    answer_authorization: bool = True  # OCPP decides the CS's authorization requests
    call_timeout_s: float = 30.0  # OCPPCommCtrlr.MessageTimeout
    ping_interval_s: float = 30.0  # OCPPCommCtrlr.WebSocketPingInterval
    # initial values of device model variables (whole seconds there); the device model
    # governs from then on, and the CSMS may change them
    retry_wait_minimum_s: float = 1.0  # OCPPCommCtrlr.RetryBackOffWaitMinimum
    retry_random_range_s: float = 2.0  # OCPPCommCtrlr.RetryBackOffRandomRange
    retry_repeat_times: int = 5  # OCPPCommCtrlr.RetryBackOffRepeatTimes
    message_attempts_tx: int = 3  # OCPPCommCtrlr.MessageAttempts (TransactionEvent)
    message_attempt_interval_tx_s: float = 10.0  # OCPPCommCtrlr.MessageAttemptInterval
    tx_updated_interval_s: float = 60.0  # SampledDataCtrlr.TxUpdatedInterval
    tls: ssl.SSLContext | None = None  # security profiles 2 and 3 (wss://)
    # TLS for another security profile (a NetworkConnectionProfile the CSMS sets, A05);
    # raises when the certificates for it are missing
    tls_factory: Callable[[int], ssl.SSLContext] | None = None


def build_device_model(settings: OcppSettings, store: Store | None = None) -> DeviceModel:
    values = {
        "call_timeout_s": str(int(settings.call_timeout_s)),
        "message_attempts_tx": str(settings.message_attempts_tx),
        "message_attempt_interval_tx_s": str(int(settings.message_attempt_interval_tx_s)),
        "retry_random_range_s": str(int(settings.retry_random_range_s)),
        "retry_repeat_times": str(settings.retry_repeat_times),
        "retry_wait_minimum_s": str(int(settings.retry_wait_minimum_s)),
        "ping_interval_s": str(int(settings.ping_interval_s)),
        "tx_updated_interval_s": str(int(settings.tx_updated_interval_s)),
        "basic_auth_password": settings.basic_auth_password,
        "identity": settings.identity,
        "vendor": settings.vendor,
        "model": settings.model,
        "security_profile": str(settings.security_profile),
    }
    evses = [
        (c.ocpp_evse_id, c.connector_id, c.connector_type, c.phases, c.max_power_w)
        for c in settings.connectors
    ]
    return DeviceModel.build(values, evses, store)
