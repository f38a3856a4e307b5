"""Duty cycle <-> current, IEC 61851-1 Table A.8."""

import pytest

from charger.cs.pwm import DutyError, current_for_duty, duty_for_current


@pytest.mark.parametrize(
    ("amps", "duty"),
    [
        (6, 10.0),
        (10, 16.67),
        (16, 26.67),
        (32, 53.33),
        (51, 85.0),
        (52, 84.8),
        (63, 89.2),
        (80, 96.0),
    ],
)
def test_duty_for_current(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == duty


@pytest.mark.parametrize("amps", [0, 5.9, 80.1, -6])
def test_unencodable_current_is_rejected(amps: float) -> None:
    with pytest.raises(DutyError, match="cannot be encoded"):
        duty_for_current(amps)


@pytest.mark.parametrize(
    ("duty", "amps"),
    [
        (5.0, 0.0),
        (7.9, 0.0),
        (8.0, 6.0),
        (10.0, 6.0),
        (26.67, 16.0),
        (85.0, 51.0),
        (89.2, 63.0),
        (96.0, 80.0),
        (97.0, 80.0),
        (97.1, 0.0),
        (100.0, 0.0),
    ],
)
def test_current_for_duty(duty: float, amps: float) -> None:
    assert current_for_duty(duty) == pytest.approx(amps, abs=0.01)
