"""How connector statuses combine into EVSE and station AvailabilityState."""

from __future__ import annotations

import pytest

from charger.protocols.ocpp.status import connector_status, evse_state, station_state


@pytest.mark.parametrize(
    ("cp_state", "status"),
    [
        ("A1", "Available"),
        ("B1", "Occupied"),
        ("C2", "Occupied"),
        ("E", "Faulted"),
        ("F", "Faulted"),
    ],
)
def test_connector_status_follows_the_control_pilot(cp_state: str, status: str) -> None:
    assert connector_status(cp_state) == status


@pytest.mark.parametrize(
    ("connectors", "state"),
    [
        (["Available", "Available"], "Available"),
        (["Occupied", "Available"], "Occupied"),  # one EVSE charges one car at a time
        (["Faulted", "Available"], "Available"),
        (["Faulted", "Faulted"], "Faulted"),
        (["Unavailable", "Unavailable"], "Unavailable"),
        (["Unavailable", "Faulted"], "Available"),
    ],
)
def test_evse_state(connectors: list[str], state: str) -> None:
    assert evse_state(connectors) == state


@pytest.mark.parametrize(
    ("evses", "state"),
    [
        (["Available", "Occupied"], "Available"),  # a new driver still finds a free EVSE
        (["Occupied", "Unavailable"], "Occupied"),
        (["Occupied", "Occupied"], "Occupied"),
        (["Unavailable", "Unavailable"], "Unavailable"),
        (["Faulted"], "Faulted"),
    ],
)
def test_station_state(evses: list[str], state: str) -> None:
    assert station_state(evses) == state
