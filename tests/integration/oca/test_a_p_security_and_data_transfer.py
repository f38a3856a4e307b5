"""OCA Part 6, blocks A (the Basic Authentication cases) and P (DataTranster, CustomData),
Core cases, on the whole firmware (`rig.octt`). One test per case, steps as comments.

The TLS cases of block A (TC_A_04, A_05, A_06, A_19, A_22) are in test_a_tls.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from ocpp.exceptions import OCPPError

from rig.octt import IDENTITY, PASSWORD, Octt

NEW_PASSWORD = "octt-new-password-0002"  # 16 to 40 characters, identifierString


def authorization(octt: Octt, connection: int) -> str:
    headers = {k.lower(): v for k, v in octt.ts.headers[connection].items()}
    return headers["authorization"]


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"{IDENTITY}:{password}".encode()).decode()


async def test_TC_A_01_CS_basic_authentication_valid_username_password(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: SecurityCtrlr.BasicAuthPassword is the configured one
        # 1. Execute Reusable State Booted (power cycle)
        await octt.power_cycle()
        await octt.booted()
        # the upgrade request: Authorization Basic base64(<id>:<password>), the identity
        # the end of the connection URL, a password of 16 to 40 characters
        header = authorization(octt, -1)
        assert header == basic(PASSWORD)
        request = octt.ts.connections[-1].request
        assert request is not None and request.path.rsplit("/", 1)[-1] == IDENTITY
        assert 16 <= len(PASSWORD) <= 40


async def set_password(octt: Octt, password: str) -> dict[str, Any]:
    """SetVariables SecurityCtrlr.BasicAuthPassword; the station's answer."""
    return await octt.call(
        "SetVariables",
        setVariableData=[
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "attributeValue": password,
            }
        ],
    )


async def test_TC_A_09_CS_update_basic_auth_password_accepted(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        connections = octt.connections()
        # 1-2. SetVariables SecurityCtrlr.BasicAuthPassword: Accepted or RebootRequired
        reply = await set_password(octt, NEW_PASSWORD)
        assert reply["setVariableResult"][0]["attributeStatus"] in ("Accepted", "RebootRequired")
        # 3-4. the station sends the upgrade request again, with the new password; the TS
        # accepts it (if RebootRequired, the reboot is the station's: no reset is sent)
        await octt.reconnected(within_s=120, since=connections)
        assert octt.connections() == connections + 1
        assert authorization(octt, -1) == basic(NEW_PASSWORD)
        # 5-8. BootNotification, every connector's state (a reconnection: the firmware
        # did not restart, unless the answer was RebootRequired)
        restarted = reply["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
        await octt.booted(restarted=restarted)
        assert octt.count("BootNotification") == 1


async def test_a_new_basic_auth_password_is_kept_in_the_security_log(
    rig: Callable[..., Any],
) -> None:
    """A01 then A04 (finding 21): the change is a security event,
    ReconfigurationOfSecurityParameters, which Part 2 Appendix "Security events" does not
    list as critical: it is kept in the security log, naming the variable and never the
    password, and not sent as a SecurityEventNotification. The boot after the reconnect
    says PowerUp: BootReasonEnumType has no reason for new credentials (docs/ocpp-oca.md)."""
    async with rig() as octt:
        connections = octt.connections()
        logged = len(await octt.security_log())
        start, changed_at = len(octt.ts.log), octt.loop.wall()
        reply = await set_password(octt, NEW_PASSWORD)
        assert reply["setVariableResult"][0]["attributeStatus"] == "Accepted"
        await octt.reconnected(within_s=120, since=connections)
        await octt.booted(restarted=False)  # a reconnection: the firmware did not restart
        assert octt.sent("BootNotification")[-1]["reason"] == "PowerUp"
        [entry] = (await octt.security_log())[logged:]
        assert entry["type"] == "ReconfigurationOfSecurityParameters"
        assert entry["techInfo"] == "SecurityCtrlr.BasicAuthPassword"
        stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
        assert abs(stamp.timestamp() - changed_at) < 1
        assert NEW_PASSWORD not in repr(await octt.security_log())
        # not critical: no notification, checked once the next Heartbeat has come
        await octt.next_heartbeat()
        await octt.nothing("SecurityEventNotification", after=start)


async def test_TC_A_10_CS_update_basic_auth_password_rejected(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1-2. SetVariables BasicAuthPassword with fewer than 16 characters: Rejected
        reply = await octt.call(
            "SetVariables",
            setVariableData=[
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "attributeValue": "short-pass-0123",
                }
            ],
        )
        assert reply["setVariableResult"][0]["attributeStatus"] == "Rejected"
        # 3-5. the next upgrade request has the old password: Reusable State Booted
        # (by a reset)
        await octt.reset_and_boot()
        assert authorization(octt, -1) == basic(PASSWORD)


async def test_TC_P_01_CS_data_transfer_rejected_unknown_vendor_id(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. DataTransfer of a vendor the station does not know
        reply = await octt.call(
            "DataTransfer", vendorId="org.openchargealliance.octt", messageId="octt"
        )
        assert reply["status"] in ("UnknownVendorId", "UnknownMessageId", "Rejected")


async def test_TC_P_03_CS_custom_data_receive_custom_data(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        custom = {"vendorId": "org.openchargealliance.octt", "note": "custom"}
        offline = {
            "component": {"name": "OCPPCommCtrlr", "customData": custom},
            "variable": {"name": "OfflineThreshold", "customData": custom},
        }
        # 1-2. SetVariables OfflineThreshold 200, Actual, with customData: Accepted
        reply = await octt.call(
            "SetVariables",
            customData=custom,
            setVariableData=[
                {
                    **offline,
                    "attributeValue": "200",
                    "attributeType": "Actual",
                    "customData": custom,
                }
            ],
        )
        assert reply["setVariableResult"][0]["attributeStatus"] == "Accepted"
        # 3-4. GetVariables with customData: Accepted, Actual or omitted, 200
        reply = await octt.call(
            "GetVariables",
            customData=custom,
            getVariableData=[{**offline, "attributeType": "Actual", "customData": custom}],
        )
        [result] = reply["getVariableResult"]
        assert result["attributeStatus"] == "Accepted"
        assert result.get("attributeType", "Actual") == "Actual"
        assert result["attributeValue"] == "200"


async def test_custom_data_without_its_vendor_id_is_refused(rig: Callable[..., Any]) -> None:
    """Beyond TC_P_03: customData needs its vendorId (OCPP 2.0.1 schemas)."""
    async with rig() as octt:
        from ocpp.v201 import call

        request = call.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}
            ],
            custom_data={"note": "no vendor"},
        )
        with pytest.raises(OCPPError) as error:
            await octt.station.call(request, suppress=False, skip_schema_validation=True)
        assert type(error.value).__name__ == "OccurrenceConstraintViolationError"
