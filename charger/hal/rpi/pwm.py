"""The CP generator: a hardware PWM channel through /sys/class/pwm.

The pwmchip is found by its device-tree node, not by its number, which depends on probe
order and differs between boards (the Pi 4's PWM0 is `/soc/pwm@7e20c000`, usually
pwmchip0; the Pi 5's RP1 PWM0 is `.../rp1/pwm@98000`, pwmchip2 or so). The configured
node may be the full path or its last components (`pwm@7e20c000`); a platform device
name (`fe20c000.pwm`) is accepted too, for boards without a device tree.

Edges stay clean: the period is written before any duty (the kernel refuses a duty above
the period), the duty before the channel is enabled (no stray -12 V pulse at start-up),
and the channel stays enabled for the steady levels (100 % duty = +12 V, 0 % = -12 V), so
a change of level or duty takes effect at the next period boundary without a gap.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

PWM_PERIOD_NS = 1_000_000  # 1 kHz, IEC 61851-1 Table A.7
SYSFS_PWM = Path("/sys/class/pwm")
DEVICETREE = Path("/sys/firmware/devicetree/base")
EXPORT_WAIT_S = 1.0  # udev gives the new channel's files to the charger group meanwhile


class PwmError(Exception):
    pass


def find_pwmchip(device: str, root: Path = SYSFS_PWM, devicetree: Path = DEVICETREE) -> Path:
    """The pwmchip directory whose device-tree node (or device name) is `device`."""
    wanted = "/" + device.strip("/")
    seen: list[str] = []
    for chip in sorted(root.glob("pwmchip*")):
        node = chip / "device" / "of_node"
        names: list[str] = []
        if node.exists():
            with contextlib.suppress(ValueError):  # a node outside the tree: not ours
                names.append("/" + str(node.resolve().relative_to(devicetree.resolve())))
        if (chip / "device").exists():
            names.append("/" + (chip / "device").resolve().name)
        seen.append(f"{chip.name} ({', '.join(names) or 'no device'})")
        if any(name == wanted or name.endswith(wanted) for name in names):
            return chip
    raise PwmError(
        f"no PWM chip with the device-tree node {device!r} under {root}: "
        f"{'; '.join(seen) or 'no pwmchip at all (is the pwm overlay loaded?)'}"
    )


class SysfsPwm:
    """One PWM channel at 1 kHz; `set_duty` is two sysfs writes (returns at once)."""

    def __init__(self, chip: Path, channel: int) -> None:
        self._dir = chip / f"pwm{channel}"
        if not self._dir.exists():
            (chip / "export").write_text(str(channel))
        self._wait_for_export()
        self.duty_percent = 100.0
        # The kernel refuses a duty above the period: a longer period goes first, a
        # shorter one after the duty. +12 V (100 %) is set before the output is on.
        current = int(self._read("period") or 0)
        if current <= PWM_PERIOD_NS:
            self._write("period", PWM_PERIOD_NS)
            self._write("duty_cycle", PWM_PERIOD_NS)
        else:
            self._write("duty_cycle", PWM_PERIOD_NS)
            self._write("period", PWM_PERIOD_NS)
        self._write("enable", 1)

    @property
    def directory(self) -> Path:
        return self._dir

    def _wait_for_export(self) -> None:
        deadline = time.monotonic() + EXPORT_WAIT_S
        while True:
            try:
                if (self._dir / "period").exists():
                    with (self._dir / "period").open("r+"):
                        return
            except PermissionError:
                pass
            if time.monotonic() > deadline:
                raise PwmError(f"{self._dir} did not appear (or is not writable) after export")
            time.sleep(0.01)  # start-up only, before the loop runs anything

    def _read(self, name: str) -> str:
        try:
            return (self._dir / name).read_text().strip()
        except OSError:
            return ""

    def _write(self, name: str, value: int) -> None:
        (self._dir / name).write_text(str(value))

    def set_duty(self, duty_percent: float) -> None:
        self.duty_percent = duty_percent
        self._write("duty_cycle", round(PWM_PERIOD_NS * duty_percent / 100.0))

    def disable(self) -> None:
        self._write("enable", 0)
