"""Locates the files under `assets/` in a source checkout and in an installed package."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


@cache
def assets_root() -> Path:
    # A source checkout (also an editable install) has assets/ beside the package; an
    # installed wheel puts them under <prefix>/share/charger/assets (setup.cfg data_files).
    for candidate in (
        Path(__file__).resolve().parent.parent / "assets",
        Path(sys.prefix) / "share" / "charger" / "assets",
    ):
        if (candidate / "schemas").is_dir():
            return candidate
    raise FileNotFoundError("charger assets not found beside the package or in share/charger")


def asset_path(*parts: str) -> Path:
    return assets_root().joinpath(*parts)
