"""A corrupt state database (reliability issue, defect 7): the station starts anyway,
with defaults, charges, and tells the operator (log naming the file, security event)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rig.csms import CsmsState, ocpp_csms
from rig.processes import Broker, Charger
from tests.support.probe import probe_on


async def test_a_corrupt_database_is_moved_aside_reported_and_charging_works(
    broker: Broker, start_charger: Callable[..., Charger], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "charger.db").write_bytes(b"\x00garbage, no SQLite header" * 50)
    (state_dir / "ocpp.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url:
        charger = start_charger(broker.port, tail=f'[ocpp]\nenabled = true\ncsms_url = "{url}"\n')
        await state.wait_for("SecurityEventNotification", count=3)
        events = [p for a, p in state.received if a == "SecurityEventNotification"]
        recovered = sorted(p["tech_info"] for p in events if p["type"] == "StateDatabaseRecovered")
        assert [info.split("/")[-1].split(".corrupt-")[0] for info in recovered] == [
            "charger.db",
            "ocpp.db",
        ]
        async with probe_on(broker.port) as probe:
            await probe.sim("plug_in")
            await probe.wait_message("cp_status", state="C2")
    log = charger.log()
    assert f"state_database_corrupt path={state_dir / 'charger.db'}" in log
    assert f"state_database_corrupt path={state_dir / 'ocpp.db'}" in log
    moved = sorted(p.name.split(".corrupt-")[0] for p in state_dir.glob("*.corrupt-*"))
    assert moved == ["charger.db", "ocpp.db"]  # kept for the service, not deleted
