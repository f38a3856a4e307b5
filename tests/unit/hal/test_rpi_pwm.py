"""The CP generator on a fake sysfs tree: the pwmchip found by its device-tree node on a
Pi 4 and a Pi 5 layout (different chip numbers), export, and the order of the writes
(the kernel refuses a duty above the period; +12 V before the output is enabled)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from charger.hal.rpi import pwm as pwm_mod
from charger.hal.rpi.pwm import PwmError, SysfsPwm, find_pwmchip
from tests.support.fake_kernel import PI4_PWM, PI5_PWM, export_channel, sysfs_pwm


def test_pi4_pwm_by_device_tree_node(tmp_path: Path) -> None:
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    assert find_pwmchip("/soc/pwm@7e20c000", klass, dt).name == "pwmchip0"
    assert find_pwmchip("pwm@7e20c000", klass, dt).name == "pwmchip0"
    assert find_pwmchip("fe20c000.pwm", klass, dt).name == "pwmchip0"  # the device name


def test_pi5_pwm_is_found_whatever_its_number(tmp_path: Path) -> None:
    # On the Pi 5 the RP1's PWM comes after other PWM chips: pwmchip2 here.
    other = ("axi/1f00100000.pwm", "axi/pcie@120000/rp1/pwm@100000")
    klass, dt = sysfs_pwm(tmp_path, {0: other, 2: PI5_PWM})
    chip = find_pwmchip("/axi/pcie@120000/rp1/pwm@98000", klass, dt)
    assert chip.name == "pwmchip2"
    with pytest.raises(PwmError, match="no PWM chip with the device-tree node '/soc/pwm@7e20c000'"):
        find_pwmchip("/soc/pwm@7e20c000", klass, dt)


def test_no_pwm_chip_at_all(tmp_path: Path) -> None:
    (tmp_path / "class" / "pwm").mkdir(parents=True)
    with pytest.raises(PwmError, match="is the pwm overlay loaded"):
        find_pwmchip("pwm@7e20c000", tmp_path / "class" / "pwm", tmp_path)


def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    writes: list[tuple[str, int]] = []
    real = SysfsPwm._write

    def write(self: SysfsPwm, name: str, value: int) -> None:
        writes.append((name, value))
        real(self, name, value)
        period = int((self.directory / "period").read_text() or 0)
        duty = int((self.directory / "duty_cycle").read_text() or 0)
        assert duty <= period or period == 0, f"duty {duty} above period {period}"

    monkeypatch.setattr(SysfsPwm, "_write", write)
    return writes


def test_export_then_plus_12_v_before_enable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    chip = find_pwmchip("pwm@7e20c000", klass, dt)
    writes = recorded(monkeypatch)
    # the kernel creates pwm0 a moment after the export write
    timer = threading.Timer(0.05, export_channel, (chip, 0))
    timer.start()
    pwm = SysfsPwm(chip, 0)
    timer.join()
    assert (chip / "export").read_text() == "0"
    assert writes == [("period", 1_000_000), ("duty_cycle", 1_000_000), ("enable", 1)]
    pwm.set_duty(5.0)
    assert (pwm.directory / "duty_cycle").read_text() == "50000"
    pwm.set_duty(0.0)  # steady -12 V: still enabled, no gap
    assert (pwm.directory / "enable").read_text() == "1"


def test_a_longer_period_left_by_another_process_is_shortened_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    chip = find_pwmchip("pwm@7e20c000", klass, dt)
    channel = export_channel(chip, 0)
    (channel / "period").write_text("2000000")
    (channel / "duty_cycle").write_text("1500000")
    (channel / "enable").write_text("1")
    writes = recorded(monkeypatch)
    SysfsPwm(chip, 0)
    assert writes == [("duty_cycle", 1_000_000), ("period", 1_000_000), ("enable", 1)]


def test_a_channel_that_never_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    klass, dt = sysfs_pwm(tmp_path, {0: PI4_PWM})
    monkeypatch.setattr(pwm_mod, "EXPORT_WAIT_S", 0.05)
    with pytest.raises(PwmError, match="did not appear"):
        SysfsPwm(find_pwmchip("pwm@7e20c000", klass, dt), 1)
