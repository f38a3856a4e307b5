"""Properties of the SLAC state machine over random scenarios (reliability issue, defects
11-15, all found by fuzzing). `fuzz/slac_fsm_fuzz.py` runs the same checks for longer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from charger.protocols.slac import evse as fsm
from tests.support.slac_checks import check_timing, check_trust
from tests.support.slac_scenarios import Step, scenarios

# Bounded for the normal test run: about a second each.
PROPERTY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(scenario=scenarios())
def test_ticks_never_leave_a_due_deadline_and_wakeups_stay_few(scenario: list[Step]) -> None:
    check_timing(scenario)


@PROPERTY
@given(scenario=scenarios())
def test_only_the_runs_ev_gets_answers_and_only_the_modem_confirms(scenario: list[Step]) -> None:
    check_trust(scenario)


def test_the_happy_path_matches_and_links() -> None:
    """The scenarios' prefix is a real match, so the properties reach deep states."""
    from tests.support.slac_scenarios import HAPPY_PATH

    sim = check_trust(HAPPY_PATH)
    events = [e for played in sim.played for e in played.events]
    assert any(isinstance(e, fsm.Matched) for e in events)
    assert any(isinstance(e, fsm.LinkEstablished) for e in events)
