"""What a firmware update needs from the system below the application: an A/B
installer (RAUC on the Raspberry Pi image, `charger.hal.rauc`; a simulated one in
`charger.sim.rauc`).

The installer writes a signed bundle to the slot that is not running and makes it the
next to boot; the application reboots into it, checks itself and marks the slot good,
or marks it bad so that the bootloader goes back to the other slot. Everything here is
async and never blocks the loop (D-Bus, subprocesses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# (percent done, what is happening) while a bundle is installed
Progress = Callable[[int, str], None]


class InstallFailed(Exception):
    """The bundle was not installed. `verification`: the bundle itself was refused (its
    signature does not chain to the keyring, its payload is corrupt, it is meant for
    another system); otherwise writing it failed."""

    def __init__(self, reason: str, *, verification: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.verification = verification


class InstallerUnavailable(OSError):
    """The installer cannot be reached (no RAUC service, no D-Bus)."""


@dataclass(frozen=True, slots=True)
class Slot:
    name: str  # RAUC's slot name, e.g. "rootfs.1"
    bootname: str  # the bootloader's name of it, e.g. "B"
    booted: bool  # the system runs from it
    primary: bool  # the bootloader boots it next
    boot_status: str  # "good", "bad" or "" (unknown)
    bundle_version: str = ""  # of the bundle last installed to it ("" unknown)


class FirmwareInstaller(Protocol):
    async def install(self, bundle: Path, progress: Progress) -> str:
        """Verifies `bundle` against the system's keyring, writes it to the inactive slot
        and makes that slot the next to boot; returns the slot's bootname. Raises
        InstallFailed."""

    async def slots(self) -> list[Slot]: ...

    async def booted(self) -> str:
        """The bootname of the slot the system runs from."""

    async def mark_good(self) -> None:
        """The running slot works: the bootloader keeps booting it."""

    async def mark_bad(self) -> None:
        """The running slot does not work: the next boot goes to the other slot."""

    async def reboot(self) -> None:
        """Boots the slot the bootloader has first: reboots the board (the simulated
        installer asks the application to restart instead)."""

    async def close(self) -> None: ...
