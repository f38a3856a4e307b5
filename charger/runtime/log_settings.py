"""Settings of logging (`[log]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charger.runtime.settings import setting

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class LogConfig:
    """Logging to stderr, one line per event."""

    level: LogLevel = setting("info", "the least severe level logged")
    health_interval_s: float = setting(
        600.0,
        "period of the `health` line (tasks, memory, open files, stores' sizes, longest loop"
        " stall); 0: none",
        unit="s",
        lo=0,
        hi=86400,
    )
