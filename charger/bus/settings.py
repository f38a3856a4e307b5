"""Settings of the bus (`[bus]`)."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import setting


@dataclass(frozen=True)
class BusConfig:
    """The in-process bus of Josev API messages, shared by every service."""

    request_timeout_s: float = setting(
        10.0, "how long a bus request waits for its response", unit="s", lo=0.1, hi=600
    )
    validate_local: bool = setting(
        False,
        "also check every message made in this process against the schemas (a debug aid: "
        "a bad message raises at its source; those from MQTT are always checked)",
    )
