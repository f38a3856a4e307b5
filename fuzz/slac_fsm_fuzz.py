"""Longer random runs of the SLAC state machine's property tests.

The unit tests run a fixed, bounded set of examples; this runs the same checks with new
random scenarios for as long as asked (hypothesis, no instrumentation needed):

    python fuzz/slac_fsm_fuzz.py [EXAMPLES]   # default 10000, about a minute

A failure prints the shortest scenario hypothesis found and exits 1.
"""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, ".")
from tests.support.slac_checks import check_timing, check_trust
from tests.support.slac_scenarios import Step, scenarios


def main(examples: int) -> int:
    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )

    @run
    @given(scenario=scenarios(max_steps=80))
    def both(scenario: list[Step]) -> None:
        check_timing(scenario)
        check_trust(scenario)

    both()
    print(f"slac_fsm_fuzz: {examples} scenarios, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))
