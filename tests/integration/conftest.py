"""Fixtures of the integration tests: a mosquitto broker on a free port and the charger
as a subprocess (`rig.processes`); the MQTT probe is `tests.support.probe`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.processes import Broker, Charger, charger_config, launch_charger

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    if b.process is not None and b.process.poll() is None:
        b.kill()


@pytest.fixture
def start_charger(tmp_path: Path) -> Iterator[Callable[..., Charger]]:
    started: list[Charger] = []

    def start(
        port: int,
        *,
        broker: str = "external",
        extra: str = "",
        cs: str = "local",
        evse: str = "",
        tail: str = "",
        args: tuple[str, ...] = (),
    ) -> Charger:
        config = charger_config(
            tmp_path, port, broker=broker, extra=extra, cs=cs, evse=evse, tail=tail
        )
        log_path = tmp_path / f"charger-{len(started)}.log"
        charger = launch_charger(config, log_path, port, args)
        started.append(charger)
        return charger

    yield start
    for charger in started:
        charger.stop()
