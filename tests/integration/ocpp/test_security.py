"""Security profiles 2 and 3 of the OCPP client alone against TLS CSMSs with certificates
made here: what the client itself does (the TLS context, the security events it queues
durably while no CSMS can be reached, the client certificate). The OCA cases TC_A_04,
A_05, A_06 run on the whole firmware: tests/integration/oca/test_a_tls.py."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Iterator

import pytest
from ocpp.v201 import call

from charger.protocols.ocpp.tls import client_context
from rig.csms import CsmsState, ocpp_csms, tls_front
from rig.net import free_port, wait_port
from rig.ocpp_station import station
from tests.support.pki import server_context


async def security_events(st: object, count: int = 1) -> list[dict[str, object]]:
    """The security events queued in the outbox (no CSMS ever took them)."""
    outbox = st.client._outbox  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while True:
            events = [
                e.payload
                for e in await outbox.pending()
                if e.action == "SecurityEventNotification"
                and e.payload["type"] != "StartupOfTheDevice"  # every start has one
            ]
            if len(events) >= count:
                return events
            await asyncio.sleep(0.05)


async def test_profile_2_connects_over_tls_with_basic_auth(pki: dict[str, object]) -> None:
    state = CsmsState()
    root_ = pki["root"]
    tls = client_context(2, str(root_.cert))  # type: ignore[attr-defined]
    async with (
        ocpp_csms(state, tls=server_context(pki["server"])) as url,
        station(url, security_profile=2, tls=tls) as st,
    ):
        await state.wait_for("BootNotification")
        headers = {k.lower(): v for k, v in state.headers[0].items()}
        assert headers["authorization"].startswith("Basic ")
        connected = await st.wait_for("websocket_status", status="connected")
        assert connected.data["security_profile"] == 2 and url.startswith("wss://")


@pytest.mark.parametrize("server", ["untrusted", "wrong_host"])
async def test_an_invalid_server_certificate_queues_its_security_event(
    pki: dict[str, object], server: str
) -> None:
    state = CsmsState()
    tls = client_context(2, str(pki["root"].cert))  # type: ignore[attr-defined]
    async with (
        ocpp_csms(state, tls=server_context(pki[server])) as url,
        station(url, security_profile=2, tls=tls) as st,
    ):
        [event] = await security_events(st)
        assert event["type"] == "InvalidCsmsCertificate"
        assert "certificate verify failed" in str(event["techInfo"])
        assert state.actions() == []  # never got as far as a BootNotification


@pytest.fixture
def tls11_csms(pki: dict[str, object]) -> Iterator[int]:
    """`openssl s_server` allowed nothing newer than TLS 1.1; yields its port."""
    server = pki["server"]
    port = free_port()
    command = [
        "openssl",
        "s_server",
        "-accept",
        str(port),
        "-cert",
        str(server.cert),  # type: ignore[attr-defined]
        "-key",
        str(server.key),
        "-tls1_1",
        "-cipher",
        "DEFAULT@SECLEVEL=0",
        "-quiet",
    ]  # type: ignore[attr-defined]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port
    finally:
        process.kill()
        process.wait()


async def test_a_server_below_tls_1_2_queues_its_security_event(
    pki: dict[str, object], tls11_csms: int
) -> None:
    tls = client_context(2, str(pki["root"].cert))  # type: ignore[attr-defined]
    async with station(f"wss://127.0.0.1:{tls11_csms}/ocpp", security_profile=2, tls=tls) as st:
        [event] = await security_events(st)
        assert event["type"] == "InvalidTLSVersion"
        assert "protocol version" in str(event["techInfo"])


async def test_profile_3_client_certificate(pki: dict[str, object]) -> None:
    state = CsmsState()
    station_cert = pki["station"]
    server = server_context(pki["server"], client_ca=pki["station_root"].cert)  # type: ignore[attr-defined]
    tls = client_context(
        3,
        str(pki["root"].cert),
        str(station_cert.cert),  # type: ignore[attr-defined]
        str(station_cert.key),
    )  # type: ignore[attr-defined]
    async with ocpp_csms(state, tls=server) as url, station(url, security_profile=3, tls=tls):
        await state.wait_for("BootNotification")
        headers = {k.lower() for k in state.headers[0]}
        assert "authorization" not in headers  # profile 3: the certificate is the identity


async def test_profile_3_server_refuses_a_station_without_certificate(
    pki: dict[str, object],
) -> None:
    state = CsmsState()
    server = server_context(pki["server"], client_ca=pki["station_root"].cert)  # type: ignore[attr-defined]
    tls = client_context(2, str(pki["root"].cert))  # type: ignore[attr-defined]
    async with (
        ocpp_csms(state) as plain,
        tls_front({"valid": server}, plain, host="127.0.0.1") as front,
        station(front.url, security_profile=2, tls=tls) as st,
    ):
        # the station's second handshake: its first attempt is over, refused
        first, _ = await front.wait_handshakes(2)
        assert not first.completed and "certificate" in first.error, first
        assert state.actions() == [] and state.connections == []
        assert st.client.registered is False  # type: ignore[attr-defined]


async def test_a_new_basic_auth_password_reconnects_with_it_and_boots_again() -> None:
    """Finding 18 (A01, TC_A_09): the answer goes out, then the station closes the
    connection and opens a new one with the new password, and boots over it."""
    state = CsmsState(interval=300)
    new_password = "a-new-password-0002"
    async with ocpp_csms(state) as url, station(url):
        await state.wait_for("StatusNotification")
        reply = await state.stations[0].call(
            call.SetVariables(
                set_variable_data=[
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attribute_value": new_password,
                    }
                ]
            )
        )
        assert reply.set_variable_result[0]["attribute_status"] == "Accepted"
        await state.wait_for("BootNotification", count=2)
        assert len(state.connections) == 2
        header = {k.lower(): v for k, v in state.headers[1].items()}["authorization"]
        assert header == "Basic " + base64.b64encode(f"CS001:{new_password}".encode()).decode()
