"""The OCA-named tests run on the OCTT-style rig (`rig.octt`): every test gets an event
loop with a virtual clock, and each pytest worker one mosquitto broker for the firmware's
MQTT bridge (the tests themselves never touch MQTT)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from rig.octt import TlsMaterial, octt, octt_loop
from rig.processes import Broker
from tests.support.ocpp_pki import octt_pki


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    return {"octt": octt_loop}


@pytest.fixture(scope="session")
def octt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("octt-broker"))
    broker.start()
    yield broker
    if broker.process is not None and broker.process.poll() is None:
        broker.kill()


@pytest.fixture
def rig(tmp_path: Path, octt_broker: Broker) -> Callable[..., Any]:
    """`async with rig(**options) as octt:` the rig started and Booted (`rig.octt.octt`)."""
    return functools.partial(octt, tmp_path, octt_broker.port)


@pytest.fixture(scope="session")
def octt_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """The TLS Test System's PKI (`tests.support.ocpp_pki`): pass it as
    `rig(tls=octt_tls, security_profile=2)`."""
    return octt_pki(tmp_path_factory.mktemp("octt-pki")).material()
