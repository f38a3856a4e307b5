"""Hardware abstraction layer: interfaces plus backends chosen by name at run time."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from charger.config import EvseConfig, RpiConfig, SimConfig
from charger.hal.interfaces import Board

BACKENDS = ("sim", "rpi")


def create_board(
    backend: str, evses: Sequence[EvseConfig], sim: SimConfig, rpi: RpiConfig
) -> Board:
    """Builds the board of the named backend; the backend module is imported only here."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown HAL backend {backend!r} (expected one of {BACKENDS})")
    module = importlib.import_module(f"charger.hal.{backend}")
    board: Board = module.create(evses=evses, sim=sim, rpi=rpi)
    return board
