"""The two FirmwareInstallers: the simulated RAUC (Debian's `rauc` checks and unpacks real
bundles; its bootloader is boot.cmd.in in miniature) and RAUC over D-Bus against a real
`rauc service` on a private bus (slots on files, a custom bootloader backend)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from charger.hal.firmware import InstallerUnavailable, InstallFailed
from charger.hal.rauc import RaucInstaller
from charger.sim.rauc import SimRauc
from tests.support.firmware import Manufacturer, build_bundle, corrupt, manufacturer, rauc_available

pytestmark = pytest.mark.skipif(not rauc_available(), reason="rauc and mksquashfs are needed")


@pytest.fixture
def maker(tmp_path: Path) -> Manufacturer:
    return manufacturer(tmp_path / "pki")


def progress_log() -> tuple[list[tuple[int, str]], object]:
    seen: list[tuple[int, str]] = []
    return seen, lambda percent, text: seen.append((percent, text))


# ---------------------------------------------------------------------- simulated RAUC


async def test_sim_installs_a_good_bundle_and_boots_it_next(
    tmp_path: Path, maker: Manufacturer
) -> None:
    reboots: list[int] = []
    sim = await SimRauc.boot(tmp_path / "rauc", maker.root.cert_file, lambda: reboots.append(1))
    assert await sim.booted() == "A"
    bundle = build_bundle(tmp_path, maker.signer, version="2.0.0")
    seen, progress = progress_log()
    assert await sim.install(bundle, progress) == "B"  # type: ignore[arg-type]
    assert seen[0][0] == 0 and seen[-1][0] == 100
    assert (tmp_path / "rauc" / "slot-B" / "rootfs.ext4").exists()
    slots = {s.bootname: s for s in await sim.slots()}
    assert slots["B"].primary and slots["B"].bundle_version == "2.0.0"
    assert slots["A"].booted and not slots["A"].primary
    await sim.reboot()
    assert reboots == [1]
    again = await SimRauc.boot(tmp_path / "rauc", maker.root.cert_file, lambda: None)
    assert await again.booted() == "B"
    await again.mark_good()
    assert {s.bootname: s.boot_status for s in await again.slots()}["B"] == "good"


@pytest.mark.parametrize("bad", ["untrusted", "corrupt", "incompatible"])
async def test_sim_refuses_a_bundle_rauc_would_refuse(
    tmp_path: Path, maker: Manufacturer, bad: str
) -> None:
    sim = await SimRauc.boot(tmp_path / "rauc", maker.root.cert_file, lambda: None)
    if bad == "untrusted":
        bundle = build_bundle(tmp_path, maker.stranger)
    elif bad == "corrupt":
        bundle = corrupt(build_bundle(tmp_path, maker.signer))
    else:
        bundle = build_bundle(tmp_path, maker.signer, compatible="someone-else")
    _, progress = progress_log()
    with pytest.raises(InstallFailed) as failed:
        await sim.install(bundle, progress)  # type: ignore[arg-type]
    assert failed.value.verification
    assert {s.bootname for s in await sim.slots() if s.primary} == {"A"}  # nothing changed


async def test_sim_faults_fail_the_install_or_the_boot(tmp_path: Path, maker: Manufacturer) -> None:
    directory = tmp_path / "rauc"
    sim = await SimRauc.boot(directory, maker.root.cert_file, lambda: None)
    bundle = build_bundle(tmp_path, maker.signer)
    (directory / "faults.json").write_text(json.dumps({"install": "fail"}))
    _, progress = progress_log()
    with pytest.raises(InstallFailed) as failed:
        await sim.install(bundle, progress)  # type: ignore[arg-type]
    assert not failed.value.verification
    (directory / "faults.json").write_text(json.dumps({"bad_boot": True}))
    assert await sim.install(bundle, progress) == "B"  # type: ignore[arg-type]
    after = await SimRauc.boot(directory, maker.root.cert_file, lambda: None)
    assert await after.booted() == "A"  # B never came up: the bootloader went back


async def test_sim_mark_bad_sends_the_next_boot_to_the_other_slot(
    tmp_path: Path, maker: Manufacturer
) -> None:
    directory = tmp_path / "rauc"
    sim = await SimRauc.boot(directory, maker.root.cert_file, lambda: None)
    _, progress = progress_log()
    await sim.install(build_bundle(tmp_path, maker.signer), progress)  # type: ignore[arg-type]
    new = await SimRauc.boot(directory, maker.root.cert_file, lambda: None)
    assert await new.booted() == "B"
    await new.mark_bad()
    old = await SimRauc.boot(directory, maker.root.cert_file, lambda: None)
    assert await old.booted() == "A"
    assert {s.bootname: s.boot_status for s in await old.slots()}["B"] == "bad"


# ---------------------------------------------------------------------- RAUC over D-Bus

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_type="method_call"/><allow send_type="signal"/>
    <allow send_type="method_return"/><allow send_type="error"/>
    <allow receive_type="method_call"/><allow receive_type="signal"/>
    <allow receive_type="method_return"/><allow receive_type="error"/>
  </policy>
</busconfig>
"""

BACKEND = """#!/bin/sh
# RAUC's custom bootloader backend, its state in files beside it
d={dir}
echo "$@" >> $d/calls
case "$1" in
  get-primary) cat $d/primary 2>/dev/null || echo A ;;
  set-primary) echo "$2" > $d/primary ;;
  get-state) cat $d/state-$2 2>/dev/null || echo good ;;
  set-state) echo "$3" > $d/state-$2 ;;
esac
"""

SYSTEM_CONF = """[system]
compatible=charger-sim
bootloader=custom
data-directory={dir}/data
[handlers]
bootloader-custom-backend={dir}/backend.sh
[keyring]
path={keyring}
check-purpose=codesign
[slot.rootfs.0]
device={dir}/slot-a.img
type=raw
bootname=A
[slot.rootfs.1]
device={dir}/slot-b.img
type=raw
bootname=B
"""


@pytest.fixture
def system_bus(tmp_path: Path) -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is needed")
    socket = Path(f"/tmp/charger-test-bus-{os.getpid()}-{id(tmp_path)}")
    conf = tmp_path / "bus.conf"
    conf.write_text(BUS_CONF.format(socket=socket))
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork"])
    try:
        for _ in range(200):
            if socket.exists():
                break
            subprocess.run(["sleep", "0.01"], check=True)
        yield f"unix:path={socket}"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(5)
        socket.unlink(missing_ok=True)


@pytest.fixture
async def rauc_service(
    tmp_path: Path, system_bus: str, maker: Manufacturer
) -> AsyncIterator[tuple[RaucInstaller, Path]]:
    directory = tmp_path / "rauc"
    directory.mkdir()
    (directory / "backend.sh").write_text(BACKEND.format(dir=directory))
    (directory / "backend.sh").chmod(0o755)
    for name in ("slot-a.img", "slot-b.img"):
        (directory / name).write_bytes(b"\0" * 1024 * 1024)
    conf = directory / "system.conf"
    conf.write_text(SYSTEM_CONF.format(dir=directory, keyring=maker.root.cert_file))
    service = await asyncio.create_subprocess_exec(
        "rauc",
        "service",
        f"--conf={conf}",
        "--override-boot-slot=A",
        env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": system_bus},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    installer = RaucInstaller(bus_address=system_bus)
    try:
        for _ in range(100):  # until the service owns its name
            try:
                await installer.booted()
                break
            except InstallerUnavailable:
                await asyncio.sleep(0.05)
        yield installer, directory
    finally:
        await installer.close()
        service.terminate()
        await service.wait()


async def test_rauc_reports_its_slots_and_marks_the_booted_one(
    rauc_service: tuple[RaucInstaller, Path],
) -> None:
    installer, directory = rauc_service
    assert await installer.booted() == "A"
    slots = {s.bootname: s for s in await installer.slots()}
    assert set(slots) == {"A", "B"}
    assert slots["A"].booted and slots["A"].primary and slots["A"].name == "rootfs.0"
    await installer.mark_good()
    await installer.mark_bad()
    calls = (directory / "calls").read_text().splitlines()
    assert calls.index("set-state A good") < calls.index("set-state A bad")


async def test_rauc_refuses_an_untrusted_bundle_with_progress_and_its_reason(
    tmp_path: Path, rauc_service: tuple[RaucInstaller, Path], maker: Manufacturer
) -> None:
    installer, _ = rauc_service
    seen, progress = progress_log()
    with pytest.raises(InstallFailed) as failed:
        await installer.install(build_bundle(tmp_path, maker.stranger), progress)  # type: ignore[arg-type]
    assert failed.value.verification, failed.value.reason
    assert "signature" in failed.value.reason.lower()
    assert seen and any("Verifying signature" in text for _, text in seen)


async def test_rauc_installs_a_good_bundle_where_bundles_can_be_mounted(
    tmp_path: Path, rauc_service: tuple[RaucInstaller, Path], maker: Manufacturer
) -> None:
    installer, directory = rauc_service
    seen, progress = progress_log()
    try:
        slot = await installer.install(build_bundle(tmp_path, maker.signer), progress)  # type: ignore[arg-type]
    except InstallFailed as exc:
        # RAUC checked signature and manifest; mounting a verity bundle needs
        # device-mapper and loop devices, which a container may not have
        assert not exc.verification, exc.reason
        assert any("Checking manifest contents done" in text for _, text in seen)
        if "mount" in exc.reason.lower():
            pytest.skip(f"no dm-verity here: {exc.reason}")
        raise
    assert slot == "B"
    assert (directory / "primary").read_text().strip() == "B"


def _reboot(self: _Login1, interactive: bool) -> None:
    self.reboots.append(interactive)


# dbus-fast reads D-Bus signatures from the annotations (this module's are postponed)
_reboot.__annotations__ = {"interactive": "b", "return": None}
_reboot.__name__ = "Reboot"


class _Login1(ServiceInterface):
    """systemd-logind's Manager, as much of it as a reboot needs."""

    Reboot = method()(_reboot)

    def __init__(self) -> None:
        super().__init__("org.freedesktop.login1.Manager")
        self.reboots: list[bool] = []


async def test_reboot_asks_logind_and_a_missing_service_is_unavailable(system_bus: str) -> None:
    installer = RaucInstaller(bus_address=system_bus)
    with pytest.raises(InstallerUnavailable):
        await installer.reboot()  # no logind on this bus
    logind = await MessageBus(bus_address=system_bus).connect()
    manager = _Login1()
    logind.export("/org/freedesktop/login1", manager)
    await logind.request_name("org.freedesktop.login1")
    try:
        await installer.reboot()
        assert manager.reboots == [False]  # not interactive: no password prompt
    finally:
        await installer.close()
        logind.disconnect()
