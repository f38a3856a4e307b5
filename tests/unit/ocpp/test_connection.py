"""CsmsConnection's security events go through the one callable it is given (the
client's, which keeps them in the log and notifies the kinds the CSMS hears of), and a
failure of the new-password watch is logged, not lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

from charger.protocols.ocpp.connection import CsmsConnection
from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model

SETTINGS = OcppSettings("ws://x/ocpp", "CS1", "old", "V", "M", "1", "1", (Connector("E", 1, 1),))


class Stop(Exception):
    """Ends CsmsConnection.run after its first connection or attempt."""


def stop() -> None:
    raise Stop


def link(connect: Any) -> tuple[CsmsConnection, list[tuple[str, str]]]:
    events: list[tuple[str, str]] = []

    async def security_event(kind: str, info: str) -> None:
        events.append((kind, info))

    networks = NetworkProfiles(None, NetworkProfile(1, SETTINGS.csms_url, 1))
    dm = build_device_model(SETTINGS)
    return CsmsConnection(SETTINGS, dm, networks, security_event, connect=connect), events


async def test_a_tls_failure_is_handed_to_the_security_event_callable() -> None:
    error = ssl.SSLCertVerificationError("certificate verify failed: unknown CA")

    def refuse(url: str, **kwargs: Any) -> Any:
        raise error

    connection, events = link(refuse)
    with pytest.raises(Stop):
        await connection.run(lambda ws: asyncio.sleep(0), stop)
    assert events == [("InvalidCsmsCertificate", str(error))]


async def test_a_security_profile_upgrade_is_handed_to_the_security_event_callable() -> None:
    connection, events = link(None)
    connection.profile = NetworkProfile(2, "wss://x/ocpp", 2)
    await connection.settle()
    assert events == [
        ("ReconfigurationOfSecurityParameters", "SecurityCtrlr.SecurityProfile 1 -> 2")
    ]


class Ws:
    subprotocol = "ocpp2.0.1"

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def close(self, code: int, reason: str) -> None:
        self.closing.set()
        raise RuntimeError("close failed")


async def test_a_failed_close_for_a_new_password_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = Ws()

    @contextlib.asynccontextmanager
    async def connect(url: str, **kwargs: Any) -> AsyncIterator[Ws]:
        yield ws

    connection, events = link(connect)

    async def serve(_: Any) -> None:
        connection._dm.assign("SecurityCtrlr", "BasicAuthPassword", "new")
        while not ws.closing.is_set():  # until the watch has seen it and closed
            connection.dm_changed.set()
            await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING), pytest.raises(Stop):
        await connection.run(serve, stop)
    [record] = [r for r in caplog.records if r.getMessage() == "ocpp_password_watch_failed"]
    assert record.levelno == logging.WARNING
    assert record.kv == {"url": "ws://x/ocpp", "error": "RuntimeError('close failed')"}
    assert events == []
