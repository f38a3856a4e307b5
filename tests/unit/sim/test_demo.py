"""`charger sim --demo`: what runs where, with the packaged configurations."""

from __future__ import annotations

from charger import config
from charger.sim.board import create_board
from charger.sim.service import DC_HLC_SCRIPT, DEMO_SCRIPT, demo_plan


def _plan(name: str) -> list[tuple[int, object]]:
    cfg = config.load(config.default_path(name), None)
    return demo_plan(create_board(cfg.evses, cfg.sim))


def test_the_demo_config_adds_an_iso15118_dc_session() -> None:
    assert _plan("demo.toml") == [(1, DEMO_SCRIPT), (2, DC_HLC_SCRIPT)]
    cfg = config.load(config.default_path("demo.toml"), None)
    sim = config.load(config.default_path("sim.toml"), None)
    # simctl and bus tail find the demo's broker with sim.toml's defaults
    assert (cfg.mqtt.port, cfg.station.state_dir) == (sim.mqtt.port, sim.station.state_dir)


def test_the_plain_simulator_demo_is_unchanged() -> None:
    assert _plan("sim.toml") == [(1, DEMO_SCRIPT)]
