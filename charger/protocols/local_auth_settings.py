"""Settings of authorization (`[authorization]`): who decides, and the built-in
authority's allow-list (`local_auth`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charger.runtime.settings import Report, setting

AuthMode = Literal["free", "allow_list", "external"]


@dataclass(frozen=True)
class AuthorizationConfig:
    """Who may charge."""

    mode: AuthMode = setting(
        "free",
        '"free": everyone may charge; "allow_list": the tokens below; '
        '"external": another service (e.g. OCPP) decides',
    )
    tokens: tuple[str, ...] = setting((), 'RFID tokens for mode = "allow_list"')

    def check(self, report: Report) -> None:
        if self.mode == "allow_list" and not self.tokens:
            report("tokens", "is empty", 'at least one token when mode = "allow_list"')
