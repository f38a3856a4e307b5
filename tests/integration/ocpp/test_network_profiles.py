"""Network connection profiles (B09, B10) and the security profile upgrade (A05) in the
OCPP client alone, against played CSMSs: the slots, the priority list taking effect at
the next connection, the fallback order. The OCA cases TC_B_45, B_46, B_49, A_19 and
A_22 run on the whole firmware (tests/integration/oca/test_b_network_profiles.py,
test_a_tls.py)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.tls import client_context
from charger.runtime.store import Store
from rig.csms import CsmsState, ocpp_csms
from rig.net import free_port
from rig.ocpp_station import station
from tests.support.ocpp_steps import booted
from tests.support.pki import server_context
from tests.support.polling import eventually


def connection_data(url: str, security_profile: int = 1) -> dict[str, Any]:
    return {
        "ocpp_version": "OCPP20",
        "ocpp_transport": "JSON",
        "ocpp_csms_url": url,
        "message_timeout": 30,
        "security_profile": security_profile,
        "ocpp_interface": "Wired0",
    }


def priority(value: str) -> dict[str, Any]:
    return {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"},
        "attribute_value": value,
    }


def profiles(url: str) -> NetworkProfiles:
    return NetworkProfiles(Store(Path(tempfile.mkdtemp()) / "net.db"), NetworkProfile(1, url, 1))


async def drop_connection(state: CsmsState) -> None:
    """What a Reset (or a lost link) comes to for the connection: the station reconnects."""
    await state.connections[-1].close()


async def test_set_network_profile_refuses_a_missing_slot_the_slot_in_use_and_an_empty_one() -> (
    None
):
    state = CsmsState(interval=300)
    async with ocpp_csms(state) as url, station(url) as st:
        csms = await booted(state, st)
        reply = await csms.call(
            call.SetNetworkProfile(configuration_slot=999, connection_data=connection_data(url))
        )
        assert reply.status == "Rejected"
        in_use = await csms.call(
            call.SetNetworkProfile(configuration_slot=1, connection_data=connection_data(url))
        )
        assert in_use.status == "Rejected"  # the profile the connection runs on
        wrong = await csms.call(call.SetVariables(set_variable_data=[priority("1,3")]))
        assert wrong.set_variable_result[0]["attribute_status"] == "Rejected"  # slot 3 empty


async def test_a_lost_connection_comes_back_over_the_new_priority_list() -> None:
    old, new = CsmsState(interval=300), CsmsState(interval=300)
    async with (
        ocpp_csms(old) as old_url,
        ocpp_csms(new) as new_url,
        station(old_url, network_profiles=profiles(old_url)) as st,
    ):
        await old.wait_for("StatusNotification")
        csms = old.stations[0]
        reply = await csms.call(
            call.SetNetworkProfile(configuration_slot=2, connection_data=connection_data(new_url))
        )
        assert reply.status == "Accepted"
        result = await csms.call(call.SetVariables(set_variable_data=[priority("2,1")]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        await drop_connection(old)
        boot = await new.wait_for("BootNotification")
        assert boot["charging_station"]["serial_number"] == "SN-42"
        client: Any = st.client  # type: ignore[attr-defined]
        await new.wait_for("StatusNotification")
        assert client.dm.value("OCPPCommCtrlr", "ActiveNetworkProfile") == "2"


async def test_a_slot_nobody_listens_on_gives_way_after_its_connection_attempts() -> None:
    state = CsmsState(interval=300)
    dead = f"ws://127.0.0.1:{free_port()}/ocpp"
    async with ocpp_csms(state) as url:
        networks = profiles(url)
        await networks.set(
            2,
            {
                "ocppVersion": "OCPP20",
                "ocppTransport": "JSON",
                "ocppCsmsUrl": dead,
                "messageTimeout": 30,
                "securityProfile": 1,
                "ocppInterface": "Wired0",
            },
            active=None,
            minimum_security=1,
            can_connect=lambda level: True,
        )
        async with station(url, network_profiles=networks) as st:
            client: Any = st.client  # type: ignore[attr-defined]
            client.dm.assign("OCPPCommCtrlr", "NetworkConfigurationPriority", "2,1")
            client.dm.assign("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "2")
            await state.wait_for("StatusNotification")  # slot 2 failed twice, then slot 1
            assert client.dm.value("OCPPCommCtrlr", "ActiveNetworkProfile") == "1"


async def test_after_the_fallback_failed_too_the_priority_list_is_tried_again() -> None:
    handshakes: list[tuple[str, str]] = []
    first = CsmsState(name="slot 1", connection_log=handshakes, refuse_connections=99)
    second = CsmsState(name="slot 2", connection_log=handshakes, refuse_connections=99)
    async with ocpp_csms(first) as url, ocpp_csms(second) as second_url:
        networks = profiles(url)
        await networks.set(
            2,
            NetworkProfile(2, second_url, 1).connection_data(),
            active=None,
            minimum_security=1,
            can_connect=lambda level: True,
        )
        await networks.succeeded(1)  # the last accepted connection went over slot 1
        async with station(url, network_profiles=networks) as st:
            client: Any = st.client  # type: ignore[attr-defined]
            client.dm.assign("OCPPCommCtrlr", "NetworkConfigurationPriority", "1,2")
            client.dm.assign("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "1")
            await eventually(lambda: len(handshakes) >= 6)
    assert [name for name, _ in handshakes[:6]] == [
        "slot 1",
        "slot 2",
        "slot 1",
        "slot 1",
        "slot 2",
        "slot 1",
    ]
    assert {outcome for _, outcome in handshakes} == {"refused"}


async def test_a_tls_profile_raises_the_security_profile_and_a_lower_one_is_refused(
    pki: dict[str, Any],
) -> None:
    plain, secure = CsmsState(interval=300), CsmsState(interval=300)
    tls = server_context(pki["server"])
    ca = str(pki["root"].cert)
    async with ocpp_csms(plain) as ws_url, ocpp_csms(secure, tls=tls) as wss_url:
        factory = lambda level: client_context(level, ca)  # noqa: E731
        async with station(ws_url, network_profiles=profiles(ws_url), tls_factory=factory) as st:
            await plain.wait_for("StatusNotification")
            csms = plain.stations[0]
            upgrade = call.SetNetworkProfile(
                configuration_slot=2, connection_data=connection_data(wss_url, 2)
            )
            assert (await csms.call(upgrade)).status == "Accepted"
            await csms.call(call.SetVariables(set_variable_data=[priority("2,1")]))
            await drop_connection(plain)
            await secure.wait_for("StatusNotification")  # over TLS now
            client: Any = st.client  # type: ignore[attr-defined]
            assert client.dm.value("SecurityCtrlr", "SecurityProfile") == "2"
            assert client.dm.value("OCPPCommCtrlr", "NetworkConfigurationPriority") == "2"
            downgrade = call.SetNetworkProfile(
                configuration_slot=3, connection_data=connection_data(ws_url, 1)
            )
            assert (await secure.stations[0].call(downgrade)).status == "Rejected"


def test_a_profile_needs_a_url_that_fits_its_security_profile() -> None:
    networks = profiles("ws://127.0.0.1:1/ocpp")

    async def attempt(url: str, level: int, can: bool = True) -> str | None:
        data = {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": url,
            "messageTimeout": 30,
            "securityProfile": level,
            "ocppInterface": "Wired0",
        }
        return await networks.set(
            2, data, active=None, minimum_security=1, can_connect=lambda _: can
        )

    async def run() -> None:
        assert await attempt("ws://csms/ocpp", 2) == "security profile 2 needs a wss:// URL"
        assert await attempt("wss://csms/ocpp", 1) == "security profile 1 needs a ws:// URL"
        assert "no CSMS root" in str(await attempt("wss://csms/ocpp", 3, can=False))
        assert await attempt("wss://csms/ocpp", 2) is None

    asyncio.run(run())
