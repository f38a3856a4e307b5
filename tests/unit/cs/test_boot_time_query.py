"""A service that starts after the CS learns each EVSE's control-pilot state from the
boot-time query (finding 9 of docs/ocpp-oca.md: an EV plugged in across a reboot)."""

from __future__ import annotations

from pathlib import Path

from tests.support.station import EVSE_ID, running_station, station_config


async def test_cs_parameters_publishes_the_current_cp_status_before_its_answer(
    tmp_path: Path,
) -> None:
    async with running_station(station_config(tmp_path)) as st:
        st.ev.plug_in()
        await st.wait_state("C2")  # free charging: the EV takes energy
        last = [m for m in st.messages if m.name == "cp_status"][-1]
        mark = len(st.messages)
        await st.request("cs_parameters", {})
        assert st.names(after=mark) == [
            "cs_parameters.request",
            "cp_status.update",
            "cs_parameters.response",
        ]
        again = st.messages[mark + 1]
        assert again.topic == "cs/josev" and again.data["evse_id"] == EVSE_ID
        assert again.data == last.data  # the state it is in, as it was published
