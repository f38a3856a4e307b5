"""RAUC over D-Bus (`de.pengutronix.rauc.Installer` on the system bus) with dbus-fast:
the `FirmwareInstaller` of the Raspberry Pi image (image/meta-charger: system.conf, two
root file system slots A and B, U-Boot's boot.cmd).

- `install`: InstallBundle, its progress from the Progress property, the outcome from
  the Completed signal (LastError says why it failed); returns the bootname of the slot
  RAUC now boots first (the one it wrote).
- `slots`, `booted`: GetSlotStatus, the BootSlot property.
- `mark_good`, `mark_bad`: Mark("good" | "bad", "booted").
- `reboot`: systemd-logind's Reboot (the charger runs unprivileged: the image's polkit
  rule lets its user reboot; systemd then stops the charger the ordinary way first).

The connection is opened on first use and again after it was lost; every call has a
timeout, and a failure to reach the bus or RAUC is an `InstallerUnavailable` (or, for an
install, an `InstallFailed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from charger.hal.firmware import InstallerUnavailable, InstallFailed, Progress, Slot
from charger.runtime.log import event

log = logging.getLogger(__name__)

RAUC = "de.pengutronix.rauc"
INSTALLER = "de.pengutronix.rauc.Installer"
PROPERTIES = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"
LOGIN1 = "org.freedesktop.login1"
CALL_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 3600.0  # writing 2 GiB to an SD card takes minutes, not hours
# words of RAUC's LastError that mean the bundle itself was refused, not the writing
_VERIFICATION = ("signature", "verif", "compatible", "corrupt", "invalid bundle", "keyring")


class RaucInstaller:
    def __init__(
        self,
        *,
        bus_address: str | None = None,
        install_timeout_s: float = INSTALL_TIMEOUT_S,
    ) -> None:
        """`bus_address`: the D-Bus to use (None: the system bus)."""
        self._address = bus_address
        self._install_timeout_s = install_timeout_s
        self._bus: MessageBus | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ D-Bus

    async def _connect(self) -> MessageBus:
        if self._bus is not None and self._bus.connected:
            return self._bus
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                self._bus = await MessageBus(
                    bus_address=self._address, bus_type=BusType.SYSTEM
                ).connect()
        except (OSError, TimeoutError, DBusError, ValueError) as exc:
            raise InstallerUnavailable(f"D-Bus: {exc}") from None
        return self._bus

    async def _call(
        self,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
        *,
        interface: str = INSTALLER,
        destination: str = RAUC,
        path: str = "/",
    ) -> list[Any]:
        bus = await self._connect()
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                reply = await bus.call(message)
        except TimeoutError:
            raise InstallerUnavailable(f"{destination} {member}: no answer") from None
        except (OSError, EOFError) as exc:
            raise InstallerUnavailable(f"{destination} {member}: {exc}") from None
        if reply is None:
            raise InstallerUnavailable(f"{destination} {member}: no reply")
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body else ""
            raise InstallerUnavailable(f"{destination} {member}: {reply.error_name}: {text}")
        return list(reply.body)

    async def _property(self, name: str) -> Any:
        (value,) = await self._call("Get", "ss", [INSTALLER, name], interface=PROPERTIES)
        return value.value

    async def _match(self, rule: str, add: bool) -> None:
        member = "AddMatch" if add else "RemoveMatch"
        await self._call(
            member, "s", [rule], interface=DBUS, destination=DBUS, path="/org/freedesktop/DBus"
        )

    # ------------------------------------------------------------------ FirmwareInstaller

    async def install(self, bundle: Path, progress: Progress) -> str:
        async with self._lock:
            try:
                result = await self._install(bundle, progress)
            except InstallerUnavailable as exc:
                raise InstallFailed(str(exc)) from None
            if result != 0:
                try:
                    error = str(await self._property("LastError"))
                except InstallerUnavailable:
                    error = f"result {result}"
                raise InstallFailed(
                    f"RAUC: {error}",
                    verification=any(w in error.lower() for w in _VERIFICATION),
                )
            primary = await self._primary()
        event(log, logging.INFO, "rauc_installed", slot=primary)
        return primary

    async def _install(self, bundle: Path, progress: Progress) -> int:
        bus = await self._connect()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_message(message: Message) -> None:
            if message.message_type != MessageType.SIGNAL or message.path != "/":
                return
            if message.interface == INSTALLER and message.member == "Completed":
                if not done.done():
                    done.set_result(int(message.body[0]))
            elif message.interface == PROPERTIES and message.member == "PropertiesChanged":
                interface, changed = message.body[0], message.body[1]
                if interface == INSTALLER and "Progress" in changed:
                    percent, text, _depth = changed["Progress"].value
                    progress(int(percent), str(text))

        rules = [
            f"type='signal',sender='{RAUC}',path='/',interface='{INSTALLER}',member='Completed'",
            f"type='signal',sender='{RAUC}',path='/',interface='{PROPERTIES}',"
            "member='PropertiesChanged'",
        ]
        for rule in rules:
            await self._match(rule, add=True)
        bus.add_message_handler(on_message)
        try:
            await self._call("InstallBundle", "sa{sv}", [str(bundle), {}])
            try:
                async with asyncio.timeout(self._install_timeout_s):
                    return await done
            except TimeoutError:
                raise InstallerUnavailable(
                    f"RAUC did not finish within {self._install_timeout_s:g} s"
                ) from None
        finally:
            bus.remove_message_handler(on_message)
            for rule in rules:
                with contextlib.suppress(InstallerUnavailable):
                    await self._match(rule, add=False)

    async def _primary(self) -> str:
        """The bootname of the slot the bootloader boots next."""
        (name,) = await self._call("GetPrimary")
        for slot in await self.slots():
            if slot.name == name:
                return slot.bootname
        return str(name)

    async def slots(self) -> list[Slot]:
        (entries,) = await self._call("GetSlotStatus")
        try:
            primary = (await self._call("GetPrimary"))[0]
        except InstallerUnavailable:
            primary = None
        found = []
        for name, fields in entries:
            values = {key: variant.value for key, variant in fields.items()}
            if "bootname" not in values:
                continue  # not a boot slot (an appfs, a bootloader slot)
            found.append(
                Slot(
                    name=str(name),
                    bootname=str(values["bootname"]),
                    booted=values.get("state") == "booted",
                    primary=name == primary,
                    boot_status=str(values.get("boot-status", "")),
                    bundle_version=str(values.get("bundle.version", "")),
                )
            )
        return found

    async def booted(self) -> str:
        return str(await self._property("BootSlot"))

    async def mark_good(self) -> None:
        await self._mark("good")

    async def mark_bad(self) -> None:
        await self._mark("bad")

    async def _mark(self, state: str) -> None:
        slot, message = await self._call("Mark", "ss", [state, "booted"])
        event(log, logging.INFO, "rauc_marked", slot=slot, state=state, message=message)

    async def reboot(self) -> None:
        await self._call(
            "Reboot",
            "b",
            [False],
            interface=f"{LOGIN1}.Manager",
            destination=LOGIN1,
            path="/org/freedesktop/login1",
        )

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()
