"""Control-pilot duty cycle <-> available current, IEC 61851-1:2017 Annex A.

Shared by the CS controller (EVSE side, Table A.8) and the simulated EV (EV side).
"""

from __future__ import annotations

HLC_DUTY_PERCENT = 5.0  # Table A.8: 5 % = digital communication required
MIN_CURRENT_A = 6.0  # Table A.8: lowest current a duty cycle may encode
MAX_CURRENT_A = 80.0  # Table A.8: highest current a duty cycle may encode
_LOW_RANGE_MAX_A = 51.0  # Table A.8: I/0.6 up to 51 A, I/2.5 + 64 above


class DutyError(ValueError):
    pass


def duty_for_current(current_a: float) -> float:
    """Duty cycle in % that announces `current_a` (EVSE side, Table A.8)."""
    if not MIN_CURRENT_A <= current_a <= MAX_CURRENT_A:
        raise DutyError(
            f"{current_a:g} A cannot be encoded as a PWM duty cycle "
            f"(expected {MIN_CURRENT_A:g}-{MAX_CURRENT_A:g} A, or 0 A for no PWM)"
        )
    if current_a <= _LOW_RANGE_MAX_A:
        return round(current_a / 0.6, 2)
    return round(current_a / 2.5 + 64.0, 2)


def current_for_duty(duty_percent: float) -> float:
    """Current in A an EV may draw at this duty (EV side, Table A.8); 0 = must not charge.

    3-7 % means high-level communication (no basic-charging current), 8-10 % is 6 A,
    10-85 % is duty x 0.6, 85-96 % is (duty - 64) x 2.5, 96-97 % is 80 A.
    """
    if duty_percent < 8.0 or duty_percent > 97.0:
        return 0.0
    if duty_percent < 10.0:
        return MIN_CURRENT_A
    if duty_percent <= 85.0:
        return round(duty_percent * 0.6, 2)
    return min(MAX_CURRENT_A, round((duty_percent - 64.0) * 2.5, 2))
