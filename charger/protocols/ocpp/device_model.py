"""The OCPP 2.0.1 device model as data: components, variables, their Actual attribute and
characteristics, read from `assets/ocpp/device_model.json` plus one EVSE and Connector
component per configured EVSE.

GetVariables/SetVariables follow B05/B06: UnknownComponent, UnknownVariable,
NotSupportedAttributeType (only Actual exists here), Rejected for writing a ReadOnly
variable, reading a WriteOnly one or a value its dataType, limits or valuesList forbid.
An accepted value of a persistent variable is committed to disk before the answer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from charger.bus import api
from charger.runtime.assets import asset_path
from charger.runtime.store import Store

_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class Key:
    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse: int | None = None
    connector: int | None = None

    def storage(self) -> str:
        return json.dumps(
            [
                self.component,
                self.component_instance,
                self.evse,
                self.connector,
                self.variable,
                self.variable_instance,
            ]
        )


@dataclass(frozen=True, slots=True)
class Variable:
    key: Key
    value: str
    mutability: str = "ReadWrite"
    data_type: str = "string"
    unit: str | None = None
    values_list: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    persistent: bool = True


def _key(component: dict[str, Any], variable: dict[str, Any]) -> Key:
    evse = component.get("evse") or {}
    return Key(
        component["name"],
        variable["name"],
        component.get("instance"),
        variable.get("instance"),
        evse.get("id"),
        evse.get("connectorId"),
    )


def check_value(var: Variable, value: str) -> str | None:
    """None when `value` suits the variable, else what is wrong with it."""
    kind = var.data_type
    if kind == "integer" or kind == "decimal":
        if not (_INTEGER if kind == "integer" else _DECIMAL).fullmatch(value):
            return f"{value!r} is not {'an integer' if kind == 'integer' else 'a decimal'}"
        number = float(value)
        if var.min_limit is not None and number < var.min_limit:
            return f"{value} is below the minimum {var.min_limit:g}"
        if var.max_limit is not None and number > var.max_limit:
            return f"{value} is above the maximum {var.max_limit:g}"
    elif kind == "boolean" and value not in ("true", "false"):
        return f"{value!r} is not true or false"
    elif kind == "dateTime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{value!r} is not a date-time"
    elif kind == "string" and var.max_limit is not None and len(value) > var.max_limit:
        return f"longer than {var.max_limit:g} characters"
    elif kind == "string" and var.min_limit is not None and len(value) < var.min_limit:
        return f"shorter than {var.min_limit:g} characters"
    elif kind in ("OptionList", "MemberList", "SequenceList") and var.values_list:
        allowed = var.values_list.split(",")
        items = [value] if kind == "OptionList" else [v for v in value.split(",") if v]
        wrong = [v for v in items if v not in allowed]
        if kind == "OptionList" and not value:
            return f"an empty value is not one of {var.values_list}"
        if wrong:
            return f"{','.join(wrong)} not in {var.values_list}"
    return None


class DeviceModel:
    def __init__(self, variables: list[Variable], store: Store | None = None) -> None:
        self._vars = {v.key: v for v in variables}
        if len(self._vars) != len(variables):
            twice = [k for k, n in Counter(v.key for v in variables).items() if n > 1]
            raise ValueError(f"device model: variables defined twice: {twice}")
        self._components = {
            (k.component, k.component_instance, k.evse, k.connector) for k in self._vars
        }
        self._store = store
        # the station's time for ClockCtrlr.DateTime (the OCPP client sets its CSMS-
        # synchronised clock), as every OCPP timestamp: UTC, milliseconds, "Z"
        self.clock: Callable[[], str] = api.timestamp
        # extra checks of values the station depends on, by (component, variable)
        self.checks: dict[tuple[str, str], Callable[[str], str | None]] = {}

    @classmethod
    def build(
        cls,
        settings: dict[str, str],
        evses: list[tuple[int, int, str, int, float]],
        store: Store | None = None,
    ) -> DeviceModel:
        """The asset's variables (with `$setting` values filled in), the ChargingStation
        component, and per EVSE (id, connector id, connector type, phases, rated power in
        W) its EVSE and Connector components."""
        data = json.loads(asset_path("ocpp", "device_model.json").read_text(encoding="utf-8"))
        variables: list[Variable] = []
        for entry in data["variables"]:
            value = str(entry["value"])
            if value.startswith("$"):
                value = settings.get(value[1:], "")
            variables.append(
                Variable(
                    Key(
                        entry["component"],
                        entry["variable"],
                        entry.get("componentInstance"),
                        entry.get("variableInstance"),
                    ),
                    value,
                    entry.get("mutability", "ReadWrite"),
                    entry.get("dataType", "string"),
                    entry.get("unit"),
                    entry.get("valuesList"),
                    entry.get("minLimit"),
                    entry.get("maxLimit"),
                    entry.get("persistent", True),
                )
            )
        units: list[tuple[str, int | None, int | None, int]] = [
            ("ChargingStation", None, None, max((e[3] for e in evses), default=3))
        ]
        for evse, connector, _, phases, _ in evses:
            units += [("EVSE", evse, None, phases), ("Connector", evse, connector, phases)]
        for name, key_evse, key_connector, phases in units:
            base = Key(name, "", None, None, key_evse, key_connector)
            variables += [
                Variable(
                    replace(base, variable="AvailabilityState"),
                    "Available",
                    "ReadOnly",
                    "OptionList",
                    values_list="Available,Occupied,Reserved,Unavailable,Faulted",
                ),
                Variable(replace(base, variable="Available"), "true", "ReadOnly", "boolean"),
                Variable(
                    replace(base, variable="SupplyPhases"), str(phases), "ReadOnly", "integer"
                ),
            ]
        for evse, connector, connector_type, _, power_w in evses:
            variables.append(  # the present power; maxLimit is the rating
                Variable(
                    Key("EVSE", "Power", None, None, evse, None),
                    "0",
                    "ReadOnly",
                    "decimal",
                    unit="W",
                    max_limit=power_w,
                    persistent=False,
                )
            )
            variables.append(
                Variable(
                    Key("Connector", "ConnectorType", None, None, evse, connector),
                    connector_type,
                    "ReadOnly",
                    "string",
                )
            )
        return cls(variables, store)

    async def load(self) -> None:
        """Overlays the values persisted by earlier SetVariables."""
        if self._store is None:
            return
        stored = await self._store.items("dm/")  # one query, not one per variable
        for key, var in list(self._vars.items()):
            value = stored.get("dm/" + key.storage())
            if isinstance(value, str) and var.persistent:
                self._vars[key] = replace(var, value=value)

    # ------------------------------------------------------------------ access

    def value(self, component: str, variable: str, instance: str | None = None) -> str:
        return self._current(self._vars[Key(component, variable, None, instance)])

    def _current(self, var: Variable) -> str:
        # A dateTime without a stored value is the clock (ClockCtrlr.DateTime).
        if var.data_type == "dateTime" and var.value == "":
            return self.clock()
        return var.value

    def assign(self, component: str, variable: str, value: str) -> None:
        """The station's own update (e.g. the heartbeat interval the CSMS gave at boot)."""
        key = Key(component, variable)
        self._vars[key] = replace(self._vars[key], value=value)

    def assign_at(
        self, component: str, variable: str, value: str, evse: int | None, connector: int | None
    ) -> None:
        """The station's own update of a variable of a component that may belong to an EVSE
        or a Connector (e.g. AvailabilityState); nothing when the model lacks it."""
        key = Key(component, variable, None, None, evse, connector)
        if key in self._vars:
            self._vars[key] = replace(self._vars[key], value=value)

    async def save(self, component: str, variable: str, value: str) -> None:
        """The station's own update that must survive a restart (e.g. a security upgrade)."""
        var = self._vars[Key(component, variable)]
        if var.persistent and self._store is not None:
            await self._store.put("dm/" + var.key.storage(), value)
        self._vars[var.key] = replace(var, value=value)

    def integer(self, component: str, variable: str, instance: str | None = None) -> int:
        return int(self.value(component, variable, instance))

    def members(self, component: str, variable: str) -> frozenset[str]:
        return frozenset(v for v in self.value(component, variable).split(",") if v)

    def variables(self) -> Iterator[Variable]:
        yield from self._vars.values()

    def _find(
        self, component: dict[str, Any], variable: dict[str, Any]
    ) -> tuple[str, Variable | None]:
        key = _key(component, variable)
        if (key.component, key.component_instance, key.evse, key.connector) not in (
            self._components
        ):
            return "UnknownComponent", None
        var = self._vars.get(key)
        return ("Accepted", var) if var is not None else ("UnknownVariable", None)

    # ------------------------------------------------------------------ B06, B05

    def _resolve(self, request: dict[str, Any]) -> tuple[dict[str, Any], Variable | None]:
        """The common part of a GetVariableResult/SetVariableResult, and the variable when
        the request names an existing one's Actual attribute (else the result says why)."""
        attribute = request.get("attributeType", "Actual")
        result: dict[str, Any] = {
            "attributeType": attribute,
            "component": request["component"],
            "variable": request["variable"],
        }
        status, var = self._find(request["component"], request["variable"])
        if var is None:
            result["attributeStatus"] = status
        elif attribute != "Actual":
            result["attributeStatus"], var = "NotSupportedAttributeType", None
        return result, var

    def get(self, request: dict[str, Any]) -> dict[str, Any]:
        result, var = self._resolve(request)
        if var is None:
            return result
        if var.mutability == "WriteOnly":
            return {**result, "attributeStatus": "Rejected"}
        return {**result, "attributeStatus": "Accepted", "attributeValue": self._current(var)}

    async def set(self, request: dict[str, Any]) -> dict[str, Any]:
        result, var = self._resolve(request)
        if var is None:
            return result
        value = str(request["attributeValue"])
        check = self.checks.get((var.key.component, var.key.variable))
        problem = (
            "the variable is read-only"
            if var.mutability == "ReadOnly"
            else (check_value(var, value) or (check(value) if check else None))
        )
        if problem is not None:
            return {
                **result,
                "attributeStatus": "Rejected",
                "attributeStatusInfo": {
                    "reasonCode": "InvalidValue",
                    "additionalInfo": problem[:512],
                },
            }
        if var.persistent and self._store is not None:
            await self._store.put("dm/" + var.key.storage(), value)  # on disk before the answer
        self._vars[var.key] = replace(var, value=value)
        return {**result, "attributeStatus": "Accepted"}

    # ------------------------------------------------------------------ B07

    def report(self, base: str) -> list[dict[str, Any]]:
        """ReportData for FullInventory or ConfigurationInventory (the writable ones)."""
        return [
            _report_entry(var, self._current(var))
            for var in self._vars.values()
            if base != "ConfigurationInventory" or var.mutability != "ReadOnly"
        ]

    # ------------------------------------------------------------------ B08

    def custom_report(
        self, criteria: list[str], wanted: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """ReportData of the variables whose component meets any of `criteria` (a variable
        of that name set to true, B08.FR.04) and that match any of `wanted`
        (componentVariable, B08.FR.11; no variable: the whole component); both if both."""
        flagged = {
            _component_of(var.key)
            for var in self._vars.values()
            if var.key.variable in criteria and var.value == "true"
        }
        return [
            _report_entry(var, self._current(var))
            for var in self._vars.values()
            if (not criteria or _component_of(var.key) in flagged)
            and (not wanted or any(_matches(var.key, item) for item in wanted))
        ]


def _component_of(key: Key) -> tuple[str, str | None, int | None, int | None]:
    return (key.component, key.component_instance, key.evse, key.connector)


def _matches(key: Key, item: dict[str, Any]) -> bool:
    component = item["component"]
    if component["name"] != key.component:
        return False
    if "instance" in component and component["instance"] != key.component_instance:
        return False
    evse = component.get("evse")
    if evse is not None and (
        evse["id"] != key.evse or ("connectorId" in evse and evse["connectorId"] != key.connector)
    ):
        return False
    variable = item.get("variable")
    if variable is None:
        return True
    if variable["name"] != key.variable:
        return False
    return "instance" not in variable or variable["instance"] == key.variable_instance


def _report_entry(var: Variable, value: str) -> dict[str, Any]:
    key = var.key
    component: dict[str, Any] = {"name": key.component}
    if key.component_instance:
        component["instance"] = key.component_instance
    if key.evse is not None:
        component["evse"] = {"id": key.evse}
        if key.connector is not None:
            component["evse"]["connectorId"] = key.connector
    variable: dict[str, Any] = {"name": key.variable}
    if key.variable_instance:
        variable["instance"] = key.variable_instance
    attribute: dict[str, Any] = {
        "type": "Actual",
        "mutability": var.mutability,
        "persistent": var.persistent,
        "constant": False,
    }
    if var.mutability != "WriteOnly":
        attribute["value"] = value[:2500]
    characteristics: dict[str, Any] = {"dataType": var.data_type, "supportsMonitoring": False}
    if var.unit:
        characteristics["unit"] = var.unit
    if var.values_list:
        characteristics["valuesList"] = var.values_list
    return {
        "component": component,
        "variable": variable,
        "variableAttribute": [attribute],
        "variableCharacteristics": characteristics,
    }
