"""A simulated RAUC with two slots, for a dev PC and the tests: the same
`FirmwareInstaller` as `charger.hal.rauc`, with the real `rauc` tool checking bundles.

A bundle is checked and unpacked by Debian's `rauc` (`rauc info` verifies its CMS
signature against the keyring with `check-purpose=codesign`, as the image's system.conf
does; `rauc extract` verifies its dm-verity payload), so a bundle this installer takes is
one the image's RAUC would take too. "Writing the slot" is unpacking it into
`<dir>/slot-<bootname>/`.

The bootloader is U-Boot's A/B script (`boot.cmd.in`) in miniature, kept in
`<dir>/status.json`: a boot order and attempts left per slot. Each process start is a
boot (`SimRauc.boot`): the first slot of the order with attempts left is booted and
loses one; `mark_good` gives them back, `mark_bad` takes them all. `reboot` asks the
application to restart (the CLI re-executes the process), which boots again.

Tests make things go wrong with `<dir>/faults.json` (read at each use, so a test can
write it while the charger runs):

- `{"install": "fail"}`: writing the slot fails (InstallationFailed);
- `{"bad_boot": true}`: a freshly installed slot never comes up: the bootloader spends
  its attempts and boots the other slot again (a rollback without the new firmware
  ever running).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charger.hal.firmware import InstallFailed, Progress, Slot
from charger.runtime.log import event

log = logging.getLogger(__name__)

COMPATIBLE = "charger-sim"
ATTEMPTS = 3  # per boot of a slot, as boot.cmd.in gives
SLOTS = {"A": "rootfs.0", "B": "rootfs.1"}
RAUC_TIMEOUT_S = 120.0

_SYSTEM_CONF = """# the simulated station's RAUC, as the image's system.conf checks bundles
[system]
compatible={compatible}
bootloader=noop
bundle-formats=-plain

[keyring]
path={keyring}
check-purpose=codesign
"""


def _fresh_status() -> dict[str, Any]:
    return {
        "order": ["A", "B"],
        "left": {"A": ATTEMPTS, "B": ATTEMPTS},
        "booted": "A",
        "slots": {"A": {"version": "", "status": "good"}, "B": {"version": "", "status": ""}},
        "fallbacks": 0,
    }


class SimRauc:
    """Use `await SimRauc.boot(...)`: constructing one is a boot of the simulated board."""

    def __init__(
        self,
        directory: Path,
        keyring: Path,
        on_reboot: Callable[[], None],
        *,
        rauc: str = "rauc",
        status: dict[str, Any] | None = None,
    ) -> None:
        self.directory = directory
        self.keyring = keyring
        self._on_reboot = on_reboot
        self._rauc = rauc
        self._status = status if status is not None else _fresh_status()
        self._lock = asyncio.Lock()

    @classmethod
    async def boot(
        cls,
        directory: Path,
        keyring: Path,
        on_reboot: Callable[[], None],
        *,
        rauc: str = "rauc",
    ) -> SimRauc:
        """The bootloader's choice at power-up, then the installer of that system."""
        status = await asyncio.to_thread(_boot, directory)
        event(
            log,
            logging.INFO,
            "sim_rauc_booted",
            slot=status["booted"],
            order=" ".join(status["order"]),
            left=json.dumps(status["left"], sort_keys=True),
        )
        return cls(directory, keyring, on_reboot, rauc=rauc, status=status)

    # ------------------------------------------------------------------ FirmwareInstaller

    async def install(self, bundle: Path, progress: Progress) -> str:
        async with self._lock:
            target = next(b for b in SLOTS if b != self._status["booted"])
            progress(0, "Checking bundle")
            manifest = await self._info(bundle)
            if manifest.get("compatible") != COMPATIBLE:
                raise InstallFailed(
                    f"bundle is for {manifest.get('compatible')!r}, not {COMPATIBLE!r}",
                    verification=True,
                )
            progress(20, f"Writing slot {SLOTS[target]}")
            slot_dir = self.directory / f"slot-{target}"
            await asyncio.to_thread(shutil.rmtree, slot_dir, True)
            await self._run("extract", str(bundle), str(slot_dir), verification=True)
            if _faults(self.directory).get("install") == "fail":
                raise InstallFailed(f"writing {SLOTS[target]} failed (simulated)")
            progress(90, "Activating slot")
            status = self._status
            status["slots"][target] = {"version": str(manifest.get("version", "")), "status": ""}
            status["order"] = [target, *[b for b in status["order"] if b != target]]
            status["left"][target] = ATTEMPTS
            await asyncio.to_thread(_save, self.directory, status)
            progress(100, "Installing done")
            return target

    async def slots(self) -> list[Slot]:
        status = self._status
        return [
            Slot(
                name,
                bootname,
                booted=status["booted"] == bootname,
                primary=_first_bootable(status) == bootname,
                boot_status=status["slots"][bootname]["status"],
                bundle_version=status["slots"][bootname]["version"],
            )
            for bootname, name in SLOTS.items()
        ]

    async def booted(self) -> str:
        return str(self._status["booted"])

    async def mark_good(self) -> None:
        async with self._lock:
            booted = self._status["booted"]
            self._status["slots"][booted]["status"] = "good"
            self._status["left"][booted] = ATTEMPTS
            await asyncio.to_thread(_save, self.directory, self._status)
        event(log, logging.INFO, "sim_rauc_marked", slot=booted, state="good")

    async def mark_bad(self) -> None:
        async with self._lock:
            booted = self._status["booted"]
            self._status["slots"][booted]["status"] = "bad"
            self._status["left"][booted] = 0
            await asyncio.to_thread(_save, self.directory, self._status)
        event(log, logging.WARNING, "sim_rauc_marked", slot=booted, state="bad")

    async def reboot(self) -> None:
        event(log, logging.WARNING, "sim_rauc_reboot")
        self._on_reboot()

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------------ the rauc tool

    async def _info(self, bundle: Path) -> dict[str, Any]:
        out = await self._run("info", "--output-format=json", str(bundle), verification=True)
        try:
            manifest = json.loads(out)
        except ValueError:
            raise InstallFailed("rauc info: no manifest in its output", verification=True) from None
        if not isinstance(manifest, dict):
            raise InstallFailed("rauc info: no manifest in its output", verification=True)
        return manifest

    async def _run(self, command: str, *args: str, verification: bool) -> str:
        """`rauc COMMAND --conf=<ours> ARGS`; its stdout, or InstallFailed with the last
        line it printed about the failure."""
        conf = await asyncio.to_thread(self._write_conf)
        try:
            process = await asyncio.create_subprocess_exec(
                self._rauc,
                command,
                f"--conf={conf}",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise InstallFailed(f"rauc cannot be run: {exc.strerror}") from None
        try:
            async with asyncio.timeout(RAUC_TIMEOUT_S):
                out, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise InstallFailed(f"rauc {command} took longer than {RAUC_TIMEOUT_S:g} s") from None
        if process.returncode != 0:
            lines = [
                line
                for line in err.decode(errors="replace").splitlines()
                if line.strip() and "rauc-Message" not in line
            ]
            reason = lines[-1] if lines else f"exit code {process.returncode}"
            raise InstallFailed(f"rauc {command}: {reason}", verification=verification)
        return out.decode(errors="replace")

    def _write_conf(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "system.conf"
        text = _SYSTEM_CONF.format(compatible=COMPATIBLE, keyring=self.keyring)
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
        return conf


# ---------------------------------------------------------------------- the bootloader


def _first_bootable(status: dict[str, Any]) -> str | None:
    return next((b for b in status["order"] if status["left"][b] > 0), None)


def _boot(directory: Path) -> dict[str, Any]:
    """boot.cmd.in: the first slot of the order with attempts left boots and loses one;
    a freshly installed slot under the `bad_boot` fault spends all its attempts."""
    status = _load(directory)
    faults = _faults(directory)
    while True:
        chosen = _first_bootable(status)
        if chosen is None:  # no slot has attempts left: both get them back
            status["left"] = {b: ATTEMPTS for b in SLOTS}
            continue
        fresh = status["slots"][chosen]["status"] == "" and chosen != status["booted"]
        if fresh and faults.get("bad_boot"):
            status["left"][chosen] = 0  # three boots that never got anywhere
            status["fallbacks"] += 1
            continue
        status["left"][chosen] -= 1
        status["booted"] = chosen
        break
    _save(directory, status)
    return status


def _load(directory: Path) -> dict[str, Any]:
    try:
        status = json.loads((directory / "status.json").read_text())
    except (OSError, ValueError):
        return _fresh_status()
    return status if isinstance(status, dict) else _fresh_status()


def _save(directory: Path, status: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "status.json"
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as f:
        json.dump(status, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    temporary.replace(path)


def _faults(directory: Path) -> dict[str, Any]:
    try:
        faults = json.loads((directory / "faults.json").read_text())
    except (OSError, ValueError):
        return {}
    return faults if isinstance(faults, dict) else {}
