"""The CS controller: the "cs" side of the Josev API for every EVSE of the station.

It answers the requests Josev sends on `josev/cs`, routes per-EVSE ones by `evse_id`,
and persists what must survive a reboot (availability) before acknowledging it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from charger import __version__
from charger.bus import api
from charger.bus.api import Message
from charger.bus import Bus
from charger.config import EvseConfig, OcppConfig, StationConfig
from charger.hal.interfaces import Board, MeterReading
from charger.runtime.log import event
from charger.cs.evse import CS_TOPIC, EvseController, EvseSettings
from charger.runtime.store import Store

log = logging.getLogger(__name__)

JOSEV_TOPIC = "josev/cs"
RESET_DELAY_S = 0.5  # lets the reset response leave through MQTT before we restart


@dataclass(frozen=True, slots=True)
class StationIdentity:
    station: StationConfig
    ocpp: OcppConfig
    free_charging: bool
    request_timeout_s: float


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
        counter = itertools.count(1)
        settings = EvseSettings(
            free_charging=identity.free_charging,
            meter_interval_s=identity.station.meter_interval_s,
            connection_timeout_s=identity.station.connection_timeout_s,
            request_timeout_s=identity.request_timeout_s,
        )
        self.evses: dict[str, EvseController] = {}
        for cfg in evse_configs:
            available = availability.get(cfg.id, True)
            self.evses[cfg.evse_id] = EvseController(
                cfg,
                board.evses[cfg.id],
                bus,
                settings,
                available=available,
                next_event_id=lambda: next(counter),
                clock=clock,
            )
        self._handlers: dict[str, Callable[[Message], Any]] = {
            "cs_status_and_limits": self._status_and_limits,
            "cs_parameters": self._parameters,
            "device_model": self._device_model,
            "cp_pwm": self._per_evse(lambda e, m: e.cp_pwm(m.data)),  # type: ignore[arg-type]
            "cs_contactor_status": self._per_evse(lambda e, m: e.contactor_status()),
            "cs_connector": self._per_evse(lambda e, m: e.connector(m.data["action"])),
            "stop_charging": self._per_evse(self._stop),
            "meter_values": self._meter_values,
            "change_availability": self._change_availability,
            "reset": self._reset,
            "authorization": self._authorization_update,
            "process_authorized_token": lambda m: {"status": "accepted"},
            "data_transfer": lambda m: {"status": "unknown_vendor_id"},
            "power_electronics_setpoint": self._per_evse(
                lambda e, m: {"evse_id": e.evse_id, "status": "rejected"}
            ),
        }

    @staticmethod
    async def load_availability(store: Store, evse_ids: list[int]) -> dict[int, bool]:
        """Availability persisted by change_availability ("Unavailable persists reset")."""
        return {i: bool(await store.get(f"available/{i}", True)) for i in evse_ids}

    def start(self) -> None:
        self._bus.subscribe(JOSEV_TOPIC, self._on_message)
        for evse in self.evses.values():
            evse.start()

    async def run(self) -> None:
        await asyncio.gather(*(evse.run() for evse in self.evses.values()))

    def drive_safe(self) -> None:
        """Halts every EVSE with its outputs safe; `run` restarts them afresh."""
        for evse in self.evses.values():
            evse.halt()

    # ------------------------------------------------------------------ dispatch

    def _on_message(self, message: Message) -> Any:
        if message.type == "response":
            return None
        handler = self._handlers.get(message.name)
        if handler is None:
            event(log, logging.DEBUG, "message_not_handled", name=message.name, type=message.type)
            return None
        result = handler(message)
        if asyncio.iscoroutine(result):
            return self._reply_later(message, result)
        self._reply(message, result)
        return None

    async def _reply_later(self, message: Message, pending: Any) -> None:
        self._reply(message, await pending)

    def _reply(self, message: Message, data: Mapping[str, Any] | None) -> None:
        if message.type == "request" and data is not None:
            self._bus.publish(message.reply(data))

    def _per_evse(
        self, handler: Callable[[EvseController, Message], Mapping[str, Any]]
    ) -> Callable[[Message], Mapping[str, Any] | None]:
        def route(message: Message) -> Mapping[str, Any] | None:
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

    def _status_and_limits(self, message: Message) -> api.CsStatusAndLimits:
        return {"evses": [e.status_and_limits() for e in self.evses.values()]}

    def _parameters(self, message: Message) -> api.CsParameters:
        params: list[api.EvseParameters] = []
        for e in self.evses.values():
            cfg = e.config
            mode = "AC_three_phase_core" if cfg.phases == 3 else "AC_single_phase_core"
            params.append(
                {
                    "evse_id": cfg.evse_id,
                    "supports_eim": e.hw.id_reader is not None,
                    "network_interface": cfg.network_interface,
                    "connectors": [
                        {
                            "id": cfg.connector_id,
                            "services": {
                                "ac": {
                                    "connector_type": mode,
                                    "nominal_voltage": cfg.nominal_voltage_v,
                                }
                            },
                        }
                    ],
                }
            )
        return {
            "sw_version": __version__,
            "hw_version": self._identity.station.hw_version,
            "number_of_evses": len(params),
            "parameters": params,
        }

    def _device_model(self, message: Message) -> api.DeviceModel:
        st, ocpp = self._identity.station, self._identity.ocpp
        evses: list[api.DeviceModelEvse] = [
            {
                "ocpp_id": e.config.id,
                "iso15118_id": e.config.evse_id,
                "power_kw": round(
                    e.config.max_current_a * e.config.nominal_voltage_v * e.config.phases / 1000, 1
                ),
                "supply_phases": e.config.phases,
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
            "basic_auth_password": ocpp.basic_auth_password,
            "serial_number": st.serial_number,
            "firmware_version": __version__,
            "evses": evses,
        }

    def _stop(self, evse: EvseController, message: Message) -> api.EvseStatus:
        evse.stop("stop_charging requested")
        return {"evse_id": evse.evse_id, "status": "accepted"}

    async def _meter_values(self, message: Message) -> Mapping[str, Any] | None:
        evse_id = message.data.get("evse_id")
        if evse_id is not None:
            evse = self.evses.get(evse_id)
            if evse is None:
                event(log, logging.WARNING, "unknown_evse", name="meter_values", evse_id=evse_id)
                return None
            return evse.meter_data(await evse.hw.meter.read())
        readings = [await e.hw.meter.read() for e in self.evses.values()]
        station = next(iter(self.evses.values())).meter_data(_sum_readings(readings))
        station.pop("evse_id", None)  # no evse_id: the whole station (OCPP evseId 0)
        return station

    async def _change_availability(self, message: Message) -> api.Status | None:
        if message.type != "request":
            return None
        evse_id = message.data.get("evse_id")
        targets = (
            list(self.evses.values())
            if evse_id is None
            else ([self.evses[evse_id]] if evse_id in self.evses else [])
        )
        if not targets:
            return {"status": "rejected"}
        available = message.data["operational_status"] == "operative"
        for evse in targets:  # committed to disk before the answer: it survives a reset
            await self._store.put(f"available/{evse.config.id}", available)
        for evse in targets:
            evse.set_available(available)
        event(log, logging.INFO, "availability", evse_id=evse_id or "station", available=available)
        return {"status": "accepted"}

    def _reset(self, message: Message) -> api.Status:
        evse_id = message.data.get("evse_id")
        if evse_id is not None:
            evse = self.evses.get(evse_id)
            if evse is None:
                return {"status": "rejected"}
            evse.stop("reset")
            return {"status": "accepted"}
        for evse in self.evses.values():
            evse.stop("reset")
        event(log, logging.WARNING, "station_reset", delay_s=RESET_DELAY_S)
        asyncio.get_running_loop().call_later(RESET_DELAY_S, self._on_reset)
        return {"status": "accepted"}

    def _authorization_update(self, message: Message) -> None:
        if message.type != "update":
            return  # responses are matched by the bus
        evse = self.evses.get(message.data["evse_id"])
        if evse is None:
            event(
                log,
                logging.WARNING,
                "unknown_evse",
                name="authorization",
                evse_id=message.data["evse_id"],
            )
            return
        if message.data["status"] == "accepted":
            evse.authorize(message.data.get("id_token"))
        else:
            evse.deauthorize(f"authorization {message.data['status']}")


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


__all__ = ["CS_TOPIC", "JOSEV_TOPIC", "CsController", "StationIdentity"]
