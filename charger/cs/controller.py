"""The CS controller: the "cs" side of the Josev API for every EVSE of the station.

It answers the requests Josev sends on `josev/cs`, routes per-EVSE ones by `evse_id`,
and persists what must survive a reboot (availability) before acknowledging it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from charger import __version__
from charger.bus import Bus, api, messages
from charger.bus.api import Form, Message
from charger.bus.messages import Topic
from charger.cs.evse import EvseController, EvseSettings
from charger.cs.settings import CsmsConnection, EvseConfig, StationConfig
from charger.hal.interfaces import Board, MeterReading
from charger.runtime.log import event
from charger.runtime.store import Store, StoreError
from charger.runtime.tasks import TaskOwner

log = logging.getLogger(__name__)

RESET_DELAY_S = 0.5  # lets the reset response leave through MQTT before we restart


@dataclass(frozen=True, slots=True)
class StationIdentity:
    station: StationConfig
    ocpp: CsmsConnection
    free_charging: bool


class CsController:
    def __init__(
        self,
        identity: StationIdentity,
        evse_configs: tuple[EvseConfig, ...],
        board: Board,
        bus: Bus,
        store: Store,
        *,
        availability: Mapping[int, bool],
        on_reset: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity = identity
        self._bus = bus
        self._store = store
        self._on_reset = on_reset
        self._tasks = TaskOwner("cs controller")
        counter = itertools.count(1)
        settings = EvseSettings(
            free_charging=identity.free_charging,
            meter_interval_s=identity.station.meter_interval_s,
            connection_timeout_s=identity.station.connection_timeout_s,
        )
        self.evses: dict[str, EvseController] = {}
        for cfg in evse_configs:
            available = availability.get(cfg.id, True)
            self.evses[cfg.evse_id] = EvseController(
                cfg,
                board.evses[cfg.id],
                bus,
                settings,
                self._tasks,
                available=available,
                next_event_id=lambda: next(counter),
                clock=clock,
            )
        # The requests (and the authorization update) Josev sends the CS on josev/cs.
        self._handlers: dict[Form[Any], Callable[[Message[Any]], Any]] = {
            messages.CS_STATUS_AND_LIMITS_REQUEST: self._status_and_limits,
            messages.CS_PARAMETERS_REQUEST: self._parameters,
            messages.DEVICE_MODEL_REQUEST: self._device_model,
            messages.CP_PWM_REQUEST: self._per_evse(lambda e, m: e.cp_pwm(m.data)),
            messages.CS_CONTACTOR_STATUS_REQUEST: self._per_evse(
                lambda e, m: e.contactor_request()
            ),
            messages.CS_CONNECTOR_REQUEST: self._per_evse(
                lambda e, m: e.connector(m.data["action"])
            ),
            messages.STOP_CHARGING_REQUEST: self._per_evse(self._stop),
            messages.METER_VALUES_REQUEST: self._meter_values,
            messages.CHANGE_AVAILABILITY_REQUEST: self._change_availability,
            messages.RESET_REQUEST: self._reset,
            messages.AUTHORIZATION_UPDATE: self._authorization_update,
            messages.PROCESS_AUTHORIZED_TOKEN_REQUEST: lambda m: {"status": "accepted"},
            messages.DATA_TRANSFER_REQUEST: lambda m: {"status": "unknown_vendor_id"},
            messages.CABLE_CHECK_REQUEST: self._per_evse(lambda e, m: e.cable_check(m.data)),
            messages.POWER_ELECTRONICS_SETPOINT_REQUEST: self._per_evse(
                lambda e, m: e.power_electronics_setpoint(m.data)
            ),
        }

    @staticmethod
    async def load_availability(store: Store, evse_ids: list[int]) -> dict[int, bool]:
        """Availability persisted by change_availability ("Unavailable persists reset")."""
        return {i: bool(await store.get(f"available/{i}", True)) for i in evse_ids}

    def start(self) -> None:
        for form, handler in self._handlers.items():
            self._bus.subscribe(
                form,
                functools.partial(self._on_message, handler),
                owner=self._tasks,
                topic=Topic.JOSEV_CS,
            )
        for evse in self.evses.values():
            evse.start()

    async def close(self) -> None:
        """Stops every task the controller started (authorization requests, replies)."""
        await self._tasks.close()

    async def run(self) -> None:
        await asyncio.gather(*(evse.run() for evse in self.evses.values()))

    def drive_safe(self) -> None:
        """Halts every EVSE with its outputs safe; `run` restarts them afresh."""
        for evse in self.evses.values():
            evse.halt()

    def shut_down(self) -> None:
        """Outputs safe for good (SIGTERM), each EVSE's contactor reported opened."""
        for evse in self.evses.values():
            evse.shut_down()

    # ------------------------------------------------------------------ dispatch

    def _on_message(self, handler: Callable[[Message[Any]], Any], message: Message[Any]) -> Any:
        result = handler(message)
        if asyncio.iscoroutine(result):
            return self._reply_later(message, result)
        self._reply(message, result)
        return None

    async def _reply_later(self, message: Message[Any], pending: Any) -> None:
        self._reply(message, await pending)

    def _reply(self, message: Message[Any], data: Mapping[str, Any] | None) -> None:
        if message.type == "request" and data is not None:
            self._bus.publish(message.reply(data))

    def _per_evse(
        self, handler: Callable[[EvseController, Message[Any]], Mapping[str, Any]]
    ) -> Callable[[Message[Any]], Mapping[str, Any] | None]:
        def route(message: Message[Any]) -> Mapping[str, Any] | None:
            evse = self.evses.get(message.data.get("evse_id", ""))
            if evse is not None:
                return handler(evse, message)
            event(
                log,
                logging.WARNING,
                "unknown_evse",
                name=message.name,
                evse_id=message.data.get("evse_id"),
            )
            reason = f"unknown evse_id {message.data.get('evse_id')!r}"
            reply = api.error_response(message.envelope(), message.topic, reason)
            return None if reply is None else reply.data

        return route

    # ------------------------------------------------------------------ station requests

    def _status_and_limits(self, message: Message[Any]) -> messages.CsStatusAndLimitsUpdate:
        return {"evses": [e.status_and_limits() for e in self.evses.values()]}

    def _parameters(self, message: Message[Any]) -> messages.CsParametersResponse:
        """cs_parameters, the last of Josev's boot-time queries: a service asks it when it
        (re)starts, after the CS published its start-up state; so each EVSE's current
        cp_status goes out again first (an EV plugged in across a reboot, OCA TC_B_21)."""
        for evse in self.evses.values():
            evse.publish_cp_status()
        params: list[messages.EvseParameters] = []
        for e in self.evses.values():
            cfg = e.config
            services: messages.Services
            if cfg.kind == "dc":  # CCS: ISO 15118-2 EnergyTransferMode DC_extended
                services = {"dc": {"connector_type": "DC_extended"}}
            else:
                mode = "AC_three_phase_core" if cfg.phases == 3 else "AC_single_phase_core"
                services = {
                    "ac": {"connector_type": mode, "nominal_voltage": cfg.nominal_voltage_v}
                }
            params.append(
                {
                    "evse_id": cfg.evse_id,
                    "supports_eim": e.hw.id_reader is not None,
                    "network_interface": cfg.network_interface,
                    "connectors": [{"id": cfg.connector_id, "services": services}],
                }
            )
        return {
            "sw_version": __version__,
            "hw_version": self._identity.station.hw_version,
            "number_of_evses": len(params),
            "parameters": params,
        }

    def _device_model(self, message: Message[Any]) -> messages.DeviceModelResponse:
        st, ocpp = self._identity.station, self._identity.ocpp
        evses: list[messages.DeviceModelEvse] = [
            {
                "ocpp_id": e.config.id,
                "iso15118_id": e.config.evse_id,
                "power_kw": _power_kw(e.config),
                "supply_phases": 0 if e.config.kind == "dc" else e.config.phases,  # OCPP: 0 DC
                "connectors": [
                    {"id": e.config.connector_id, "connector_type": e.config.connector_type}
                ],
            }
            for e in self.evses.values()
        ]
        return {
            "model": st.model,
            "vendor": st.vendor,
            "identity": ocpp.identity or st.serial_number,
            "ocpp_csms_url": ocpp.csms_url,
            "security_profile": ocpp.security_profile,
            # never on the bus, which every monitor can read: this firmware's OCPP
            # client takes the password from the config (the field is required: empty)
            "basic_auth_password": "",
            "serial_number": st.serial_number,
            "firmware_version": __version__,
            "evses": evses,
        }

    def _stop(self, evse: EvseController, message: Message[Any]) -> messages.StopChargingResponse:
        evse.stop("stop_charging requested")
        return {"evse_id": evse.evse_id, "status": "accepted"}

    async def _meter_values(self, message: Message[Any]) -> Mapping[str, Any] | None:
        evse_id = message.data.get("evse_id")
        if evse_id is not None:
            evse = self.evses.get(evse_id)
            if evse is None:
                event(log, logging.WARNING, "unknown_evse", name=message.name, evse_id=evse_id)
                return None
            reading = await evse.read_meter()
            return None if reading is None else evse.meter_data(reading)
        readings = [await e.read_meter() for e in self.evses.values()]
        if any(r is None for r in readings):
            return None  # a silent meter: the fault is raised, nothing to report
        station = next(iter(self.evses.values())).meter_data(
            _sum_readings([r for r in readings if r is not None])
        )
        station.pop("evse_id", None)  # no evse_id: the whole station (OCPP evseId 0)
        return station

    async def _change_availability(self, message: Message[Any]) -> messages.ResetResponse | None:
        evse_id = message.data.get("evse_id")
        targets = (
            list(self.evses.values())
            if evse_id is None
            else ([self.evses[evse_id]] if evse_id in self.evses else [])
        )
        if not targets:
            return {"status": "rejected"}
        available = message.data["operational_status"] == "operative"
        try:  # committed to disk before the answer: it survives a reset
            for evse in targets:
                await self._store.put(f"available/{evse.config.id}", available)
        except StoreError as exc:  # a full disk: refused, as it could not be kept
            event(log, logging.ERROR, "availability_not_stored", error=str(exc))
            return {"status": "rejected"}
        for evse in targets:
            evse.set_available(available)
        event(log, logging.INFO, "availability", evse_id=evse_id or "station", available=available)
        return {"status": "accepted"}

    def _reset(self, message: Message[Any]) -> messages.ResetResponse:
        evse_id = message.data.get("evse_id")
        if evse_id is not None:
            evse = self.evses.get(evse_id)
            if evse is None:
                return {"status": "rejected"}
            evse.stop("reset requested")
            return {"status": "accepted"}
        for evse in self.evses.values():
            evse.stop("reset requested")
        event(log, logging.WARNING, "station_reset", delay_s=RESET_DELAY_S)
        asyncio.get_running_loop().call_later(RESET_DELAY_S, self._on_reset)
        return {"status": "accepted"}

    def _authorization_update(self, message: Message[Any]) -> None:
        evse = self.evses.get(message.data["evse_id"])
        if evse is None:
            event(
                log,
                logging.WARNING,
                "unknown_evse",
                name=message.name,
                evse_id=message.data["evse_id"],
            )
            return
        if message.data["status"] == "accepted":
            evse.authorize(message.data.get("id_token"))
        else:
            evse.deauthorize(f"authorization {message.data['status']}")


def _power_kw(cfg: EvseConfig) -> float:
    if cfg.kind == "dc":
        return round(cfg.dc_max_power_w / 1000, 1)
    return round(cfg.max_current_a * cfg.nominal_voltage_v * cfg.phases / 1000, 1)


def _sum_readings(readings: list[MeterReading]) -> MeterReading:
    first = readings[0]

    def total(attr: str) -> float:
        return round(float(sum(getattr(r, attr) for r in readings)), 3)

    currents = [sum(r.current_a[i] for r in readings) for i in range(3)]
    return MeterReading(
        voltage_v=first.voltage_v,
        current_a=(currents[0], currents[1], currents[2]),
        power_w=total("power_w"),
        frequency_hz=first.frequency_hz,
        power_factor=min(r.power_factor for r in readings),
        energy_import_wh=total("energy_import_wh"),
        energy_export_wh=total("energy_export_wh"),
        reactive_import_varh=total("reactive_import_varh"),
        reactive_export_varh=total("reactive_export_varh"),
    )


__all__ = ["CsController", "StationIdentity"]
