"""Settings of the EXI codec that ISO 15118 uses (`[iso15118]`)."""

from __future__ import annotations

from dataclasses import dataclass

from charger.runtime.settings import setting


@dataclass(frozen=True)
class Iso15118Config:
    """ISO 15118 / DIN SPEC 70121 and their EXI codec."""

    exi_codec: str = setting(
        "c",
        'the EXI codec: "c" (built in), "python" (its pure-Python twin) or '
        '"package.module:attribute" naming a vendor codec with the Backend methods',
        pattern=r"c|python|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*",
    )
