"""The package's data files (`charger/assets/`: bus schemas, OCPP device model, configs).

They are package data, found through `importlib.resources` wherever the package is
installed (a source checkout, a wheel, a Yocto image's site-packages)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def asset_path(*parts: str) -> Traversable:
    """`charger/assets/<parts...>`; read it with `.read_text()` / `.iterdir()`."""
    return files("charger").joinpath("assets", *parts)
