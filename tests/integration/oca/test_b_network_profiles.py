"""OCA Part 6, block B: the migrations to a new NetworkConnectionProfile (B09, B10), Core
cases, on the whole firmware (`rig.octt`). The TS has a second endpoint (`Octt.
second_endpoint`: the same Test System, one log, at another URL) for the new profile;
both are security profile 1 (ws://), so "Same CSMS Root" holds trivially. One test per
case, steps as comments; the connection attempts are the handshakes each endpoint saw,
in order, on the virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rig.octt import Octt

RETRY_WAIT_MINIMUM_S = 20  # TC_B_49's <Configured RetryBackOffWaitMinimum>


def network_profile(url: str) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": 30,
        "securityProfile": 1,
        "ocppInterface": "Wired0",
    }


async def migrate(octt: Octt, url: str) -> None:
    """Steps 1-6 of the three cases: the new profile in slot 2 (slot 1 is in use), the
    priority "2,1", a ResetRequest OnIdle."""
    # 1-2. SetNetworkProfileRequest, configurationSlot 2: Accepted
    reply = await octt.call(
        "SetNetworkProfile", configurationSlot=2, connectionData=network_profile(url)
    )
    assert reply["status"] == "Accepted"
    # 3-4. SetVariablesRequest OCPPCommCtrlr.NetworkConfigurationPriority "2,1" (the slot
    # of step 1, then the one in use): Accepted or RebootRequired
    reply = await octt.call(
        "SetVariables",
        setVariableData=[
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "NetworkConfigurationPriority"},
                "attributeValue": "2,1",
            }
        ],
    )
    assert reply["setVariableResult"][0]["attributeStatus"] in ("Accepted", "RebootRequired")
    # 5-6. ResetRequest OnIdle: Accepted
    reply = await octt.call("Reset", type="OnIdle")
    assert reply["status"] == "Accepted"


async def test_TC_B_45_CS_migrate_to_new_connection_profile_success(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        new = await octt.second_endpoint("new")
        await migrate(octt, new.url)
        start, since = octt.step_mark, octt.now()
        # 7. Reusable State Booted, over the new profile: the new endpoint, at once
        await octt.booted(after=start, reason="RemoteReset")
        assert [(a.endpoint, a.outcome) for a in octt.attempts(after=since)] == [
            ("new", "accepted")
        ]
        assert octt.ts.endpoints[-1] == "new"
        reply = await octt.call(
            "GetVariables",
            getVariableData=[
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "ActiveNetworkProfile"},
                }
            ],
        )
        assert reply["getVariableResult"][0]["attributeValue"] == "2"


async def test_TC_B_46_CS_migrate_to_new_connection_profile_fallback(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: OCPPCommCtrlr.NetworkProfileConnectionAttempts 2
        await octt.set_variables(OCPPCommCtrlr__NetworkProfileConnectionAttempts="2")
        new = await octt.second_endpoint("new", silent=True)
        await migrate(octt, new.url)
        start, since = octt.step_mark, octt.now()
        # 7. the TS answers neither of the two connection requests of the first slot
        # 8. the TS accepts the station's connection request of the second slot
        await octt.expect("BootNotification", within_s=300, after=start)
        assert [(a.endpoint, a.outcome) for a in octt.attempts(after=since)] == [
            ("new", "unanswered"),
            ("new", "unanswered"),
            ("main", "accepted"),
        ]
        assert octt.ts.endpoints[-1] == "main"
        # 9. Reusable State Booted
        await octt.booted(after=start, reason="RemoteReset")


async def test_TC_B_49_CS_migrate_to_new_connection_profile_fallback_after_every_slot_failed(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: NetworkProfileConnectionAttempts 1, RetryBackOffRepeatTimes 0,
        # RetryBackOffRandomRange 0, RetryBackOffWaitMinimum <Configured> (20 s)
        await octt.set_variables(
            OCPPCommCtrlr__NetworkProfileConnectionAttempts="1",
            OCPPCommCtrlr__RetryBackOffRepeatTimes="0",
            OCPPCommCtrlr__RetryBackOffRandomRange="0",
            OCPPCommCtrlr__RetryBackOffWaitMinimum=str(RETRY_WAIT_MINIMUM_S),
        )
        alternative = await octt.second_endpoint("alternative", refuse_connections=10**6)
        await migrate(octt, alternative.url)  # step 5 says "Idle": the type is OnIdle
        octt.ts.refuse_connections = 1  # the station's first request back at slot 1
        start, since = octt.step_mark, octt.now()
        await octt.expect("BootNotification", within_s=300, after=start)
        tried = octt.attempts(after=since)
        # 7-8. the station tries the alternative endpoint; the TS does not accept it
        # 9-10. it switches back to the previous profile and connects; not accepted
        # 11-12. it waits RetryBackOffWaitMinimum and connects again; accepted
        assert [(a.endpoint, a.outcome) for a in tried] == [
            ("alternative", "refused"),
            ("main", "refused"),
            ("main", "accepted"),
        ]
        waited = tried[2].at - tried[1].at
        assert RETRY_WAIT_MINIMUM_S <= waited < RETRY_WAIT_MINIMUM_S + 1, waited
        # 13. Reusable State Booted
        await octt.booted(after=start, reason="RemoteReset")
