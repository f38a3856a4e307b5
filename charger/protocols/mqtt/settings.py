"""Settings of the MQTT bridge and the broker it may spawn (`[mqtt]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charger.runtime.settings import setting

BrokerMode = Literal["spawn", "external"]


@dataclass(frozen=True)
class MqttConfig:
    """The MQTT broker the bus is mirrored to."""

    broker: BrokerMode = setting(
        "spawn",
        '"spawn": start and supervise mosquitto on host:port; "external": use the broker there',
    )
    host: str = setting("127.0.0.1", "broker address")
    port: int = setting(1883, "broker port", lo=1, hi=65535)
    mosquitto: str = setting("mosquitto", "broker binary (PATH and /usr/sbin are searched)")
    username: str = setting(
        "", 'user name at an external broker (broker = "external"; empty: anonymous)'
    )
    password_file: str = setting(
        "", "file holding the password for username at an external broker (keep it 0600)"
    )
