"""OCA Part 6, block A: the TLS cases and the security-profile upgrade, Core cases, on
the whole firmware (`rig.octt`) with the TLS Test System: the TS served over real TLS
on loopback (`rig.csms.tls_front`, the PKI of `tests.support.ocpp_pki`), which picks the
server certificate (or the TLS versions) handshake by handshake and records what each
handshake came to. One test per case (TC_A_05: one parameter per kind of invalid
certificate), steps as comments.

Readings:
- "State is Booting" with a configuration state before it (TC_A_05, A_06): the TS sets
  the variable on the Booted station, then power-cycles it; the station boots with the
  TS's server certificate of the case.
- TC_A_06 step 2, "Server Hello, but uses a TLS version lower than 1.2": a server that
  knows nothing newer than TLS 1.1 cannot answer the station's ClientHello (TLS 1.2 and
  1.3 only) with a ServerHello at all; it answers with the protocol_version alert, as
  OpenSSL does. The station ends the handshake there (step 3) either way.
- Security events are the SecurityEventNotifications the TS received, in order.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from rig.octt import IDENTITY, PASSWORD, Octt, TlsMaterial

# TC_A_04 step 2: "(TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 AND
# TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384) OR (TLS_RSA_WITH_AES_128_GCM_SHA256 AND
# TLS_RSA_WITH_AES_256_GCM_SHA384)", in OpenSSL's names
ECDSA_SUITES = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"}
RSA_SUITES = {"AES128-GCM-SHA256", "AES256-GCM-SHA384"}


def basic_auth(octt: Octt, connection: int = -1) -> str:
    headers = {k.lower(): v for k, v in octt.ts.headers[connection].items()}
    return headers["authorization"]


BASIC = "Basic " + base64.b64encode(f"{IDENTITY}:{PASSWORD}".encode()).decode()


def security_events(octt: Octt, *, after: int | None = None) -> list[str]:
    """The types of the SecurityEventNotifications the TS received, in order."""
    return [p["type"] for p in octt.sent("SecurityEventNotification", after=after)]


def network_profile(url: str, security_profile: int) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": 30,
        "securityProfile": security_profile,
        "ocppInterface": "Wired0",
    }


def variable(component: str, name: str) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": name}}


async def get_variable(octt: Octt, component: str, name: str) -> str:
    reply = await octt.call("GetVariables", getVariableData=[variable(component, name)])
    [result] = reply["getVariableResult"]
    assert result["attributeStatus"] == "Accepted", result
    return str(result["attributeValue"])


async def offer_slot_2(octt: Octt, url: str, security_profile: int) -> tuple[str, str]:
    """SetNetworkProfile in slot 2, then NetworkConfigurationPriority "2,1": the two
    answers' statuses (TC_A_19 and A_22, steps 1-4)."""
    reply = await octt.call(
        "SetNetworkProfile",
        configurationSlot=2,
        connectionData=network_profile(url, security_profile),
    )
    priority = {
        **variable("OCPPCommCtrlr", "NetworkConfigurationPriority"),
        "attributeValue": "2,1",
    }
    answer = await octt.call("SetVariables", setVariableData=[priority])
    return reply["status"], answer["setVariableResult"][0]["attributeStatus"]


async def test_TC_A_04_CS_tls_server_side_certificate_valid(
    rig: Callable[..., Any], octt_tls: TlsMaterial
) -> None:
    # Before: State is Booting (security profile 2, slot 1 the TS's wss:// endpoint)
    async with rig(tls=octt_tls, security_profile=2, boot=False) as octt:
        await octt.expect("BootNotification", within_s=60)
        # 1-4. ClientHello; the TS's <Configured server certificate>; the station
        # finishes the handshake: TLS 1.2 or above, with the cipher suites of step 2
        [handshake] = octt.handshakes()
        assert handshake.completed and handshake.mode == "valid", handshake
        assert handshake.version in ("TLSv1.2", "TLSv1.3"), handshake
        offered = set(handshake.offered)
        assert offered >= ECDSA_SUITES or offered >= RSA_SUITES, handshake.offered
        # 5-6. the HTTP upgrade over it: one WebSocket, HTTP Basic (security profile 2)
        [attempt] = octt.attempts()
        assert attempt.outcome == "accepted" and octt.connections() == 1
        assert basic_auth(octt) == BASIC
        # 7-10. BootNotification Accepted; every connector's state
        await octt.booted()
        assert octt.url.startswith("wss://")


@pytest.mark.parametrize(
    "certificate",
    [
        pytest.param("unknown_root", id="TC_A_05_unknown_certificate"),
        pytest.param("expired", id="TC_A_05_expired_certificate"),
        pytest.param("wrong_host", id="TC_A_05_common_name_not_the_csms"),
    ],
)
async def test_TC_A_05_CS_tls_server_side_certificate_invalid(
    rig: Callable[..., Any], octt_tls: TlsMaterial, certificate: str
) -> None:
    async with rig(tls=octt_tls, security_profile=2) as octt:
        # Before: OCPPCommCtrlr.NetworkProfileConnectionAttempts 2; State is Booting
        await octt.set_variables(OCPPCommCtrlr__NetworkProfileConnectionAttempts="2")
        assert octt.front is not None
        octt.front.plan = [certificate]  # the next handshake's; then the configured one
        await octt.power_cycle()
        start, since = octt.step_mark, octt.now()
        # 1-3. ClientHello; the invalid certificate; the station ends the handshake
        # 4-9. a new handshake with the <Configured server certificate>, the upgrade
        await octt.expect("BootNotification", within_s=120)
        invalid, valid = octt.handshakes(after=since)
        assert invalid.mode == certificate and not invalid.completed, invalid
        assert valid.mode == "valid" and valid.completed, valid
        # no WebSocket over the invalid one: one upgrade request, over the valid one
        assert [a.outcome for a in octt.attempts(after=since)] == ["accepted"]
        # 10-13. BootNotification Accepted, every connector's state
        await octt.booted(after=start)
        # 14-15. SecurityEventNotification InvalidCsmsCertificate
        event = await octt.expect(
            "SecurityEventNotification", within_s=5, after=start, type="InvalidCsmsCertificate"
        )
        assert "certificate verify failed" in event["techInfo"]
        # one failed handshake, one event
        await octt.next_heartbeat()
        assert security_events(octt, after=start).count("InvalidCsmsCertificate") == 1


async def test_TC_A_06_CS_tls_server_side_certificate_tls_version_too_low(
    rig: Callable[..., Any], octt_tls: TlsMaterial
) -> None:
    async with rig(tls=octt_tls, security_profile=2) as octt:
        # Before: OCPPCommCtrlr.NetworkProfileConnectionAttempts 1 (then Booting)
        await octt.set_variables(OCPPCommCtrlr__NetworkProfileConnectionAttempts="1")
        assert octt.front is not None
        octt.front.plan = ["tls11"]  # a TS that knows TLS 1.1 at most; then the configured
        await octt.power_cycle()
        start, since = octt.step_mark, octt.now()
        # 1-3. ClientHello; the TS allows nothing newer than TLS 1.1; the handshake ends
        # 4-9. a new handshake with the <Configured server certificate>, the upgrade
        await octt.expect("BootNotification", within_s=120)
        too_low, valid = octt.handshakes(after=since)
        assert too_low.mode == "tls11" and not too_low.completed, too_low
        assert "unsupported protocol" in too_low.error  # the station offered only >= 1.2
        assert valid.completed and valid.version in ("TLSv1.2", "TLSv1.3"), valid
        assert [a.outcome for a in octt.attempts(after=since)] == ["accepted"]
        # 10-13. BootNotification Accepted, every connector's state
        await octt.booted(after=start)
        # 14-17. SecurityEventNotification StartupOfTheDevice (or ResetOrReboot), then
        # SecurityEventNotification InvalidTLSVersion
        event = await octt.expect(
            "SecurityEventNotification", within_s=5, after=start, type="InvalidTLSVersion"
        )
        assert "protocol version" in event["techInfo"]
        await octt.next_heartbeat()
        assert security_events(octt, after=start) == ["StartupOfTheDevice", "InvalidTLSVersion"]


async def test_TC_A_19_CS_upgrade_security_profile_accepted(
    rig: Callable[..., Any], octt_tls: TlsMaterial
) -> None:
    # Before: security profile 1; Memory State CertificateInstalled: the station has the
    # CSMS root certificate (its configured ca_file)
    async with rig(tls=octt_tls, security_profile=1) as octt:
        assert octt.url.startswith("ws://")
        # 1-2. SetNetworkProfile, slot 2 (slot 1 is in use): the TS's wss:// endpoint,
        # securityProfile 2: Accepted; 3-4. SetVariables NetworkConfigurationPriority
        # "2,1": Accepted or RebootRequired
        profile, priority = await offer_slot_2(octt, octt.tls_url, 2)
        assert profile == "Accepted" and priority in ("Accepted", "RebootRequired")
        # 5-6. ResetRequest OnIdle: Accepted
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Accepted"
        start, since = octt.step_mark, octt.now()
        # 7-8. the station connects with security profile 2: TLS with the configured
        # server certificate, then the upgrade with HTTP Basic; the TS accepts
        await octt.expect("BootNotification", within_s=120, after=start)
        [handshake] = octt.handshakes(after=since)
        assert handshake.completed and handshake.version in ("TLSv1.2", "TLSv1.3"), handshake
        assert [a.outcome for a in octt.attempts(after=since)] == ["accepted"]
        assert basic_auth(octt) == BASIC
        # 9. Reusable State Booted
        await octt.booted(after=start, reason="RemoteReset")
        # 10-11. GetVariables SecurityCtrlr.SecurityProfile: the new one, 2; the change
        # is in the security log (ReconfigurationOfSecurityParameters, not critical)
        assert await get_variable(octt, "SecurityCtrlr", "SecurityProfile") == "2"
        assert [
            e["techInfo"]
            for e in await octt.security_log()
            if e["type"] == "ReconfigurationOfSecurityParameters"
        ] == ["SecurityCtrlr.SecurityProfile 1 -> 2"]
        # 12-13. GetVariables NetworkConfigurationPriority: slot 2; slot 1 (security
        # profile 1, below the new level) has left the list (A05.FR.06)
        assert await get_variable(octt, "OCPPCommCtrlr", "NetworkConfigurationPriority") == "2"


async def test_TC_A_22_CS_upgrade_security_profile_downgrade_rejected(
    rig: Callable[..., Any], octt_tls: TlsMaterial
) -> None:
    # Before: the station runs security profile 2 (the TS's TLS endpoint, slot 1)
    async with rig(tls=octt_tls, security_profile=2) as octt:
        connections = octt.connections()
        # 1-2. SetNetworkProfile, slot 2 (not in use): securityProfile 1, a ws:// URL,
        # below the active level: Rejected (B09.FR.04); nothing changed: no slot 2 to
        # put in the priority list, the same connection
        assert await offer_slot_2(octt, octt.plain_url, 1) == ("Rejected", "Rejected")
        await octt.next_heartbeat()
        assert octt.connections() == connections
        assert await get_variable(octt, "SecurityCtrlr", "SecurityProfile") == "2"
