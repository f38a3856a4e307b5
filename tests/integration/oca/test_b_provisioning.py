"""OCA Part 6, block B (Provisioning), Core cases, on the whole firmware (`rig.octt`).

Each test is one case: its steps in order as comments, each followed by what the case
checks at that step. "<Configured x>" values of the Test System are the rig's
(`rig.octt`): one EVSE with one connector, HeartbeatInterval 300 s from the
BootNotificationResponse, the card A11CE0A1 (ISO14443). Part 6 writes the component
"OCPPCommCtrl" in places; the station's (and OCPP 2.0.1's) name is OCPPCommCtrlr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.exceptions import OCPPError

from charger.protocols.ocpp.outbox import Outbox
from rig.octt import Octt, connector

OFFLINE = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}


def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}, **extra}


def no_error(result: dict[str, Any], key: str = "attributeStatusInfo") -> bool:
    return key not in result or result[key].get("reasonCode") == "NoError"


async def report(octt: Octt, request_id: int) -> list[dict[str, Any]]:
    """Every NotifyReportRequest of `request_id`, once the one with tbc false came; each
    checked as steps 3 of TC_B_12/13/53 check it: requestId, generatedAt, seqNo 0, 1, ..."""
    while True:
        pages = octt.sent("NotifyReport", after=0, requestId=request_id)
        if pages and not pages[-1].get("tbc", False):
            break
        await octt.expect("NotifyReport", within_s=5, after=len(octt.ts.log))
    assert [p["seqNo"] for p in pages] == list(range(len(pages)))
    assert all(p["generatedAt"] for p in pages)
    return pages


def entries(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for page in pages for entry in page["reportData"]]


def check_report_entries(data: list[dict[str, Any]]) -> None:
    """TC_B_12/13 step 3: every variableCharacteristics of an OptionList or MemberList
    has a valuesList, and every reported value fits its type."""
    for entry in data:
        traits = entry.get("variableCharacteristics")
        if traits is None:
            continue
        if traits["dataType"] in ("OptionList", "MemberList", "SequenceList"):
            assert traits.get("valuesList"), entry
        for attribute in entry["variableAttribute"]:
            value = attribute.get("value")
            if value is None or not value:
                continue
            if traits["dataType"] == "integer":
                int(value)
            if traits["dataType"] == "boolean":
                assert value in ("true", "false"), entry
            if traits["dataType"] == "OptionList":
                assert value in traits["valuesList"].split(","), entry


# ------------------------------------------------------------------ B01-B03 cold boot


async def test_TC_B_01_CS_cold_boot_charging_station_accepted(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1. Execute Reusable State Booted (Manual Action: power cycle the station)
        await octt.power_cycle()
        await octt.booted()
        boot = await octt.expect("BootNotification")
        assert boot["reason"] == "PowerUp"
        assert boot["chargingStation"]["vendorName"] and boot["chargingStation"]["model"]
        [security] = octt.sent("SecurityEventNotification")
        assert security["type"] == "StartupOfTheDevice"
        # nothing but the boot's own messages until the heartbeat
        hb = await octt.next_heartbeat()
        before = {m.action for m in octt.ts.log[octt.step_mark :] if m.at < hb.at}
        assert before == {
            "BootNotification",
            "StatusNotification",
            "NotifyEvent",
            "SecurityEventNotification",
        }


async def test_TC_B_02_CS_cold_boot_charging_station_pending(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Manual Action: Reboot CS; 1-2. BootNotification answered Pending
        octt.ts.boot_status = "Pending"
        await octt.power_cycle()
        await octt.expect("BootNotification", within_s=60)
        # 3-4. SetVariables OCPPCommCtrlr.OfflineThreshold = 300, attributeType omitted
        reply = await octt.call(
            "SetVariables", setVariableData=[{**OFFLINE, "attributeValue": "300"}]
        )
        assert reply["setVariableResult"][0]["attributeStatus"] == "Accepted"
        # 5-6. GetVariables of it
        reply = await octt.call("GetVariables", getVariableData=[OFFLINE])
        assert reply["getVariableResult"][0]["attributeStatus"] == "Accepted"
        assert reply["getVariableResult"][0]["attributeValue"] == "300"
        # 7-10. GetBaseReport FullInventory, the NotifyReports
        reply = await octt.call("GetBaseReport", requestId=2, reportBase="FullInventory")
        assert reply["status"] == "Accepted"
        await report(octt, 2)
        # 11-12. RequestStartTransaction: Rejected while Pending
        reply = await octt.call(
            "RequestStartTransaction",
            idToken={"idToken": "A11CE0A1", "type": "ISO14443"},
            evseId=1,
            remoteStartId=1,
        )
        assert reply["status"] == "Rejected"
        assert octt.open_transactions() == set()
        # 13-14. TriggerMessage BootNotification: Accepted (the TS will accept the boot)
        octt.ts.boot_status = "Accepted"
        reply = await octt.call("TriggerMessage", requestedMessage="BootNotification")
        assert reply["status"] == "Accepted"
        # 15-16. the BootNotification at once, not after the Pending interval (300 s)
        await octt.expect("BootNotification", within_s=5)
        # 17-18. every connector's state
        await octt.expect("StatusNotification", within_s=5, connectorStatus="Available")
        # while Pending the station sent nothing of its own but BootNotification
        pending = octt.messages("BootNotification", after=0)[-2].at
        assert {m.action for m in octt.ts.log if m.direction == "cs" and m.at > pending} - {
            "BootNotification",
            "NotifyReport",
            "StatusNotification",
            "NotifyEvent",
            "SecurityEventNotification",
            "Heartbeat",
        } == set()


async def test_TC_B_03_CS_cold_boot_charging_station_rejected(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Manual Action: Reboot CS; 1-2. BootNotification answered Rejected, interval 300
        octt.ts.boot_status = "Rejected"
        await octt.power_cycle()
        first = await octt.expect_msg("BootNotification", within_s=60)
        # (nothing else is sent while rejected, up to the retry after the interval)
        octt.ts.boot_status = "Accepted"
        # 3-4. the next BootNotification, after the interval, answered Accepted
        second = await octt.expect_msg("BootNotification", within_s=301, after=len(octt.ts.log))
        assert second.at - first.at == pytest.approx(300, abs=1)
        between = [m for m in octt.ts.log if first.at < m.at < second.at]
        assert [m.action for m in between if m.direction == "cs"] == []
        # 5-6. every connector Available, with its AvailabilityState Delta
        await octt.booted(after=octt.ts.log.index(second))


async def test_TC_B_30_CS_cold_boot_pending_rejected_security_error(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. BootNotification answered Rejected
        octt.ts.boot_status = "Rejected"
        await octt.power_cycle()
        await octt.expect("BootNotification", within_s=60)
        # 3-4. GetBaseReport FullInventory: CALLERROR SecurityError
        with pytest.raises(OCPPError) as error:
            await octt.call("GetBaseReport", requestId=30, reportBase="FullInventory")
        assert type(error.value).__name__ == "SecurityError"
        await octt.nothing("NotifyReport")


# ------------------------------------------------------------------ B04 offline


async def test_TC_B_51_CS_status_change_offline_longer_than_the_threshold(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: OfflineThreshold 60, RetryBackOffWaitMinimum 62, RandomRange 0
        await octt.set_variables(
            OCPPCommCtrlr__OfflineThreshold="60",
            OCPPCommCtrlr__RetryBackOffWaitMinimum="62",
            OCPPCommCtrlr__RetryBackOffRandomRange="0",
        )
        # 1. TS closes the connection and refuses reconnects
        await octt.close_connection()
        closed = octt.now()
        # 2. Manual Action: connect the EV
        await octt.plug()
        # 3. TS accepts the reconnection, after the threshold was exceeded
        await octt.advance(61)
        octt.accept_connections()
        octt.mark()
        # 4-5. every connector's state: Occupied, with its Delta
        status = await octt.expect_msg(
            "StatusNotification", within_s=120, connectorStatus="Occupied", evseId=1, connectorId=1
        )
        assert status.at - closed > 60
        await octt.occupied()
        assert octt.count("BootNotification") == 0  # the same boot: no new BootNotification


async def test_TC_B_52_CS_status_change_offline_shorter_than_the_threshold(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: OfflineThreshold 60, RetryBackOffWaitMinimum 58, RandomRange 0
        await octt.set_variables(
            OCPPCommCtrlr__OfflineThreshold="60",
            OCPPCommCtrlr__RetryBackOffWaitMinimum="58",
            OCPPCommCtrlr__RetryBackOffRandomRange="0",
        )
        # 1. TS closes the connection and refuses reconnects
        await octt.close_connection()
        # 2. Manual Action: connect the EV (EVSE 1)
        await octt.plug()
        # 3. TS accepts the reconnection attempt
        octt.accept_connections()
        # 4-5. the configured connector's change only
        status = await octt.expect_msg(
            "StatusNotification", within_s=60, connectorStatus="Occupied", evseId=1
        )
        await octt.occupied()
        await octt.next_heartbeat()
        assert octt.sent("StatusNotification") == [status.payload]  # EVSE 2 unchanged


# ------------------------------------------------------------------ B06 GetVariables


async def test_TC_B_06_CS_get_variables_single_value(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: OCPPCommCtrlr.OfflineThreshold is 300
        await octt.set_variables(OCPPCommCtrlr__OfflineThreshold="300")
        # 1-2. GetVariables OfflineThreshold, attributeType Actual
        reply = await octt.call(
            "GetVariables", getVariableData=[{**OFFLINE, "attributeType": "Actual"}]
        )
        [result] = reply["getVariableResult"]
        assert result["attributeStatus"] == "Accepted"
        assert result["attributeType"] == "Actual"
        assert result["attributeValue"] == "300"
        assert result["component"] == {"name": "OCPPCommCtrlr"}
        assert result["variable"] == {"name": "OfflineThreshold"}
        assert no_error(result)


async def test_TC_B_07_CS_get_variables_multiple_values(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: OfflineThreshold 300, AuthCtrlr.LocalAuthorizeOffline true
        await octt.set_variables(
            OCPPCommCtrlr__OfflineThreshold="300", AuthCtrlr__LocalAuthorizeOffline="true"
        )
        # 1-2. both in one GetVariablesRequest, attributeType Actual
        reply = await octt.call(
            "GetVariables",
            getVariableData=[
                {**OFFLINE, "attributeType": "Actual"},
                {**item("AuthCtrlr", "LocalAuthorizeOffline"), "attributeType": "Actual"},
            ],
        )
        got = {
            (r["component"]["name"], r["variable"]["name"]): r for r in reply["getVariableResult"]
        }
        assert len(got) == 2
        for key, value in [
            (("OCPPCommCtrlr", "OfflineThreshold"), "300"),
            (("AuthCtrlr", "LocalAuthorizeOffline"), "true"),
        ]:
            assert got[key]["attributeStatus"] == "Accepted"
            assert got[key]["attributeType"] == "Actual"
            assert got[key]["attributeValue"] == value
            assert no_error(got[key])


@pytest.mark.parametrize(
    ("case", "request_item", "status"),
    [
        pytest.param(
            "TC_B_32",
            item("UnknownComponent", "OfflineThreshold"),
            "UnknownComponent",
            id="TC_B_32_unknown_component",
        ),
        pytest.param(
            "TC_B_33",
            item("OCPPCommCtrlr", "UnknownVariable"),
            "UnknownVariable",
            id="TC_B_33_unknown_variable",
        ),
        pytest.param(
            "TC_B_34",
            {**OFFLINE, "attributeType": "Target"},
            "NotSupportedAttributeType",
            id="TC_B_34_not_supported_attribute_type",
        ),
    ],
)
async def test_TC_B_32_33_34_CS_get_variables_refused(
    rig: Callable[..., Any], case: str, request_item: dict[str, Any], status: str
) -> None:
    async with rig() as octt:
        # 1-2. GetVariables of what the station does not have
        reply = await octt.call("GetVariables", getVariableData=[request_item])
        [result] = reply["getVariableResult"]
        assert result["attributeStatus"] == status
        assert result["component"] == request_item["component"]
        assert result["variable"] == request_item["variable"]
        if "attributeType" in request_item:
            assert result["attributeType"] == "Target"
        assert "attributeValue" not in result


# ------------------------------------------------------------------ B05 SetVariables


async def test_TC_B_09_CS_set_variables_single_value(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1-2. SetVariables OfflineThreshold = 300, attributeType Actual
        reply = await octt.call(
            "SetVariables",
            setVariableData=[{**OFFLINE, "attributeValue": "300", "attributeType": "Actual"}],
        )
        [result] = reply["setVariableResult"]
        assert result["attributeStatus"] == "Accepted"
        assert result["attributeType"] == "Actual"
        assert result["component"] == {"name": "OCPPCommCtrlr"}
        assert result["variable"] == {"name": "OfflineThreshold"}
        assert no_error(result)
        # the value is in force: read back as the TS would
        reply = await octt.call("GetVariables", getVariableData=[OFFLINE])
        assert reply["getVariableResult"][0]["attributeValue"] == "300"


async def test_TC_B_10_CS_set_variables_multiple_values(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # 1-2. SetVariables OfflineThreshold 300 and LocalAuthorizeOffline true
        reply = await octt.call(
            "SetVariables",
            setVariableData=[
                {**OFFLINE, "attributeValue": "300", "attributeType": "Actual"},
                {
                    **item("AuthCtrlr", "LocalAuthorizeOffline"),
                    "attributeValue": "true",
                    "attributeType": "Actual",
                },
            ],
        )
        results = reply["setVariableResult"]
        assert sorted((r["component"]["name"], r["variable"]["name"]) for r in results) == [
            ("AuthCtrlr", "LocalAuthorizeOffline"),
            ("OCPPCommCtrlr", "OfflineThreshold"),
        ]
        assert all(r["attributeStatus"] == "Accepted" and no_error(r) for r in results)
        assert all(r["attributeType"] == "Actual" for r in results)


@pytest.mark.parametrize(
    ("request_item", "status"),
    [
        pytest.param(
            {**item("UnknownComponent", "OfflineThreshold"), "attributeValue": "300"},
            "UnknownComponent",
            id="TC_B_35_unknown_component",
        ),
        pytest.param(
            {**item("OCPPCommCtrlr", "UnknownVariable"), "attributeValue": "300"},
            "UnknownVariable",
            id="TC_B_36_unknown_variable",
        ),
        pytest.param(
            {**OFFLINE, "attributeValue": "300", "attributeType": "Target"},
            "NotSupportedAttributeType",
            id="TC_B_37_not_supported_attribute_type",
        ),
        pytest.param(
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "MessageTimeout", "instance": "Default"},
                "attributeValue": "30",
            },
            "Rejected",
            id="TC_B_39_read_only",
        ),
    ],
)
async def test_TC_B_35_36_37_39_CS_set_variables_refused(
    rig: Callable[..., Any], request_item: dict[str, Any], status: str
) -> None:
    async with rig() as octt:
        # 1-2. SetVariables of what the station does not have (or may not change)
        reply = await octt.call("SetVariables", setVariableData=[request_item])
        [result] = reply["setVariableResult"]
        assert result["attributeStatus"] == status
        assert result["component"] == request_item["component"]
        assert result["variable"] == request_item["variable"]
        if "attributeType" in request_item:
            assert result["attributeType"] == "Target"


async def test_TC_B_11_CS_set_variables_invalidly_formatted_values(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        now = "2026-12-01T00:00:00.000Z"
        # Steps 1-2 for value = 60 (the configured offlineThreshold), 60.1, true, a time, abc
        for value, accepted in [
            ("60", True),
            ("60.1", False),
            ("true", False),
            (now, False),
            ("abc", False),
        ]:
            reply = await octt.call(
                "SetVariables", setVariableData=[{**OFFLINE, "attributeValue": value}]
            )
            [result] = reply["setVariableResult"]
            assert result["attributeType"] == "Actual"
            assert result["component"] == {"name": "OCPPCommCtrlr"}
            assert result["variable"] == {"name": "OfflineThreshold"}
            if accepted:
                assert result["attributeStatus"] == "Accepted", value
            else:
                assert result["attributeStatus"] == "Rejected", value
                assert result["attributeStatusInfo"]["reasonCode"] == "InvalidValue"
        # Steps 3-8 (SmartChargingCtrlr.LimitChangeSignificance, ClockCtrlr
        # .NextTimeOffsetTransitionDateTime) are tested only where supported: this station
        # has neither (UnknownComponent / UnknownVariable), as a TS would first find out.
        reply = await octt.call(
            "GetVariables",
            getVariableData=[
                item("SmartChargingCtrlr", "LimitChangeSignificance"),
                item("ClockCtrlr", "NextTimeOffsetTransitionDateTime"),
            ],
        )
        assert [r["attributeStatus"] for r in reply["getVariableResult"]] == [
            "UnknownComponent",
            "UnknownVariable",
        ]
        reply = await octt.call("GetVariables", getVariableData=[OFFLINE])
        assert reply["getVariableResult"][0]["attributeValue"] == "60"  # the last good one


# ------------------------------------------------------------------ B07 base reports


@pytest.mark.parametrize(
    "base",
    [
        pytest.param("ConfigurationInventory", id="TC_B_12_configuration_inventory"),
        pytest.param("FullInventory", id="TC_B_13_full_inventory"),
    ],
)
async def test_TC_B_12_13_CS_get_base_report(rig: Callable[..., Any], base: str) -> None:
    async with rig() as octt:
        # 1-2. GetBaseReport with a generated requestId
        reply = await octt.call("GetBaseReport", requestId=12, reportBase=base)
        assert reply["status"] == "Accepted" and no_error(reply, "statusInfo")
        # 3-4. NotifyReports with that requestId, seqNo 0, 1, ... until tbc false
        pages = await report(octt, 12)
        data = entries(pages)
        check_report_entries(data)
        names = {(e["component"]["name"], e["variable"]["name"]) for e in data}
        assert ("OCPPCommCtrlr", "HeartbeatInterval") in names
        if base == "ConfigurationInventory":
            # only what can be configured: no ReadOnly variable
            assert all(
                a.get("mutability", "ReadWrite") != "ReadOnly"
                for e in data
                for a in e["variableAttribute"]
            )
        else:
            assert ("ChargingStation", "AvailabilityState") in names  # a ReadOnly one too


async def test_TC_B_15_CS_get_base_report_not_supported_base_report(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. GetBaseReport SummaryInventory: NotSupported
        reply = await octt.call("GetBaseReport", requestId=15, reportBase="SummaryInventory")
        assert reply["status"] == "NotSupported"
        assert reply.get("statusInfo", {"reasonCode": "UnsupportedParam"})["reasonCode"] in (
            "UnsupportedParam",
        )
        await octt.nothing("NotifyReport")


# Part 2 Appendix 3, "Referenced Components and Variables": required for the blocks this
# station implements (B, C, E, F, G, J and the local list and cache of C/D).
REQUIRED = {
    ("DeviceDataCtrlr", "ItemsPerMessage"),
    ("DeviceDataCtrlr", "BytesPerMessage"),
    ("OCPPCommCtrlr", "FileTransferProtocols"),
    ("OCPPCommCtrlr", "MessageTimeout"),
    ("OCPPCommCtrlr", "MessageAttempts"),
    ("OCPPCommCtrlr", "MessageAttemptInterval"),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority"),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"),
    ("OCPPCommCtrlr", "OfflineThreshold"),
    ("OCPPCommCtrlr", "ResetRetries"),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange"),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"),
    ("OCPPCommCtrlr", "WebSocketPingInterval"),
    ("SecurityCtrlr", "CertificateEntries"),
    ("SecurityCtrlr", "OrganizationName"),
    ("SecurityCtrlr", "SecurityProfile"),
    ("AuthCtrlr", "AuthorizeRemoteStart"),
    ("AuthCtrlr", "LocalAuthorizeOffline"),
    ("AuthCtrlr", "LocalPreAuthorize"),
    ("TxCtrlr", "EVConnectionTimeOut"),
    ("TxCtrlr", "StopTxOnEVSideDisconnect"),
    ("TxCtrlr", "StopTxOnInvalidId"),
    ("TxCtrlr", "TxStartPoint"),
    ("TxCtrlr", "TxStopPoint"),
    ("SampledDataCtrlr", "TxEndedMeasurands"),
    ("SampledDataCtrlr", "TxEndedInterval"),
    ("SampledDataCtrlr", "TxStartedMeasurands"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    ("SampledDataCtrlr", "TxUpdatedInterval"),
    ("AlignedDataCtrlr", "Measurands"),
    ("AlignedDataCtrlr", "Interval"),
    ("AlignedDataCtrlr", "TxEndedMeasurands"),
    ("AlignedDataCtrlr", "TxEndedInterval"),
    ("ClockCtrlr", "DateTime"),
    ("ClockCtrlr", "TimeSource"),
    ("ChargingStation", "AvailabilityState"),
    ("ChargingStation", "Available"),
    ("ChargingStation", "SupplyPhases"),
    ("EVSE", "AvailabilityState"),
    ("EVSE", "Available"),
    ("EVSE", "Power"),
    ("EVSE", "SupplyPhases"),
    ("Connector", "AvailabilityState"),
    ("Connector", "Available"),
    ("Connector", "ConnectorType"),
    ("Connector", "SupplyPhases"),
}


async def test_TC_B_53_CS_mandatory_dm_variables_via_full_inventory(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. GetBaseReport FullInventory: Accepted
        reply = await octt.call("GetBaseReport", requestId=53, reportBase="FullInventory")
        assert reply["status"] == "Accepted" and no_error(reply, "statusInfo")
        # 3-4. the NotifyReports hold every required component/variable
        data = entries(await report(octt, 53))
        names = {(e["component"]["name"], e["variable"]["name"]) for e in data}
        assert sorted(REQUIRED - names) == []
        check_report_entries(data)


# ------------------------------------------------------------------ B11, B12 reset


async def occupied_after(octt: Octt, after: int, evse: int = 1) -> None:
    """The connector's StatusNotification Occupied and its AvailabilityState Delta, sent
    after the log entry `after` (a boot's: step 9 of TC_B_21, 7 of TC_B_22)."""
    await octt.expect(
        "StatusNotification",
        within_s=5,
        after=after,
        connectorStatus="Occupied",
        evseId=evse,
        connectorId=1,
    )
    await octt.expect(
        "NotifyEvent",
        within_s=5,
        after=after,
        eventData=lambda d: (
            d[0]["trigger"] == "Delta"
            and d[0]["actualValue"] == "Occupied"
            and d[0]["component"] == connector(evse)
            and d[0]["variable"] == {"name": "AvailabilityState"}
        ),
    )


async def test_TC_B_20_CS_reset_without_ongoing_transaction_on_idle(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        boots = octt.boots
        # 1-2. ResetRequest OnIdle: Accepted
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Accepted"
        # 3-6. BootNotification (RemoteReset), every connector Available with its Delta
        await octt.booted(reason="RemoteReset")
        assert octt.boots == boots + 1
        assert octt.sent("SecurityEventNotification", after=octt.step_mark)[0]["type"] == (
            "ResetOrReboot"
        )


async def test_TC_B_21_CS_reset_with_ongoing_transaction_on_idle(rig: Callable[..., Any]) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        await octt.charging()
        boots = octt.boots
        # 1-2. ResetRequest OnIdle: Scheduled
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Scheduled"
        # the station does not reset while the transaction goes on
        await octt.advance(30)
        assert octt.boots == boots and octt.open_transactions()
        # 3. Execute Reusable State StopAuthorized (TxStopPoint Authorized: it ends here)
        _, ended = await octt.stop_authorized()
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        # 7-8. BootNotification reason ScheduledReset
        boot = await octt.expect_msg("BootNotification", within_s=60, reason="ScheduledReset")
        after = octt.ts.log.index(boot)
        # 9. the transaction was stopped at step 3 with the EV still there: Occupied, with
        # its AvailabilityState Delta
        await occupied_after(octt, after)
        assert octt.sent("StatusNotification", after=after, connectorStatus="Available") == []
        # 11. the security event of the reboot
        await octt.expect("SecurityEventNotification", within_s=5, after=after)
        assert octt.sent("SecurityEventNotification", after=after)[0]["type"] == "ResetOrReboot"


async def test_TC_B_22_CS_reset_with_ongoing_transaction_immediate(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await octt.charging()
        # 1-2. ResetRequest Immediate: Accepted
        reply = await octt.call("Reset", type="Immediate")
        assert reply["status"] == "Accepted"
        # 3-4. the Ended TransactionEvent: ResetCommand, EVConnected, ImmediateReset
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["transactionInfo"]["transactionId"] == tx
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert "idToken" not in ended
        # 5-8. BootNotification RemoteReset; the EV still plugged: Occupied
        boot = await octt.expect_msg("BootNotification", within_s=60)
        assert boot.payload["reason"] == "RemoteReset"
        assert boot.at >= octt.messages("TransactionEvent", eventType="Ended")[0].at
        await occupied_after(octt, octt.ts.log.index(boot))


async def test_the_ended_event_of_an_immediate_reset_outlives_a_slow_outbox(
    rig: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 24: an Immediate reset during a transaction goes on only once the Ended
    event is committed to the outbox, not when it is queued for the writer: here the
    commit waits for the test (`written`), and the Ended event of the reset (ResetCommand,
    ImmediateReset) still reaches the CSMS (before: the reset went on and the event was
    lost with the writer; the next boot ended the transaction with PowerLoss)."""
    written = asyncio.Event()
    put = Outbox.put

    async def slow_put(
        self: Outbox, action: str, payload: dict[str, Any], *args: Any, **kwargs: Any
    ) -> int:
        if action == "TransactionEvent" and payload["eventType"] == "Ended":
            await written.wait()
        return await put(self, action, payload, *args, **kwargs)

    monkeypatch.setattr(Outbox, "put", slow_put)
    async with rig() as octt:
        tx = await octt.charging()
        reply = await octt.call("Reset", type="Immediate")
        assert reply["status"] == "Accepted"
        # 10 s of the firmware's time with the Ended event being written (the reset
        # waits for it up to the message timeout, 30 s, and the final reading's 2 s)
        await octt.advance(10)
        assert octt.boots == 1  # no reset yet
        written.set()
        await octt.expect_msg("BootNotification", within_s=60, reason="RemoteReset")
        ended = await octt.expect("TransactionEvent", within_s=60, eventType="Ended")
        assert ended["transactionInfo"]["transactionId"] == tx
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert octt.boots == 2


async def test_an_ev_plugged_in_across_a_power_cycle_is_occupied_and_no_new_plug_in(
    rig: Callable[..., Any],
) -> None:
    """Finding 9: the state the station starts in reaches the OCPP client (Occupied), as
    the state it was in, not a plug-in: TxStartPoint EVConnected starts nothing; the
    driver's card starts the next transaction."""
    async with rig() as octt:
        await octt.charging()
        await octt.stop_authorized()  # the transaction ends, the EV stays plugged in
        await octt.power_cycle()
        boot = await octt.expect_msg("BootNotification", within_s=60, reason="PowerUp")
        after = octt.ts.log.index(boot)
        await occupied_after(octt, after)
        await octt.next_heartbeat()
        assert octt.sent("TransactionEvent", after=after) == []
        started = await octt.authorized()
        assert (started["eventType"], started["transactionInfo"]["chargingState"]) == (
            "Started",
            "EVConnected",
        )
        await octt.energy_transfer_started()


async def test_TC_B_23_CS_reset_unavailable_persists_reset(rig: Callable[..., Any]) -> None:
    async with rig(evses=2) as octt:
        # Before: Memory State Unavailable for the configured connector (EVSE 1)
        await octt.unavailable(evse=1)
        # 1-2. ResetRequest OnIdle: Accepted
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Accepted"
        # 3-4. BootNotification reason RemoteReset
        boot = await octt.expect("BootNotification", within_s=60)
        assert boot["reason"] == "RemoteReset"
        # 5-6. EVSE 1 Unavailable, the other Available, each with its Delta
        await octt.occupied(1, "Unavailable")
        await octt.expect(
            "StatusNotification", within_s=5, connectorStatus="Available", evseId=2, connectorId=1
        )
        statuses = {
            (p["evseId"], p["connectorStatus"])
            for p in octt.sent("StatusNotification", after=octt.step_mark)
        }
        assert statuses == {(1, "Unavailable"), (2, "Available")}


async def test_TC_B_41_CS_reset_with_multiple_ongoing_transactions_on_idle(
    rig: Callable[..., Any],
) -> None:
    async with rig(evses=2) as octt:
        # Before: EnergyTransferStarted on EVSE 1 and on EVSE 2
        await octt.charging(1)
        await octt.charging(2, token="B0B0B0B1")
        boots = octt.boots
        # 1-2. ResetRequest OnIdle: Scheduled
        reply = await octt.call("Reset", type="OnIdle")
        assert reply["status"] == "Scheduled"
        # 3. StopAuthorized on EVSE 1: the station keeps running for EVSE 2
        await octt.stop_authorized(1)
        # 5. EVDisconnected on EVSE 1
        await octt.ev_disconnected(1)
        await octt.advance(10)
        assert octt.boots == boots and octt.count("BootNotification", after=0) == 1
        # 7. StopAuthorized on EVSE 2: its transaction ends (TxStopPoint Authorized)
        await octt.stop_authorized(2, token="B0B0B0B1")
        # 11-12. BootNotification ScheduledReset
        await octt.expect("BootNotification", within_s=60, reason="ScheduledReset")
        # 13-14. EVSE 1 Available (unplugged), EVSE 2 Occupied (stopped at step 7)
        await octt.expect("StatusNotification", within_s=5, evseId=1, connectorStatus="Available")
        await octt.expect("StatusNotification", within_s=5, evseId=2, connectorStatus="Occupied")


async def test_TC_B_25_CS_reset_evse_without_ongoing_transaction(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        boots = octt.boots
        # 1-2. ResetRequest OnIdle for the configured EVSE: Accepted
        reply = await octt.call("Reset", type="OnIdle", evseId=1)
        assert reply["status"] == "Accepted"
        # the EVSE resets, not the station: no new boot
        await octt.next_heartbeat()
        assert octt.boots == boots
        assert octt.count("BootNotification") == 0


async def test_TC_B_26_CS_reset_evse_with_ongoing_transaction_on_idle(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        await octt.charging()
        # 1-2. ResetRequest OnIdle for the EVSE: Scheduled
        reply = await octt.call("Reset", type="OnIdle", evseId=1)
        assert reply["status"] == "Scheduled"
        await octt.advance(30)
        assert octt.open_transactions()  # OnIdle: it waits
        # 3. StopAuthorized; 5. EVDisconnected
        await octt.stop_authorized()
        await octt.ev_disconnected()
        assert octt.count("BootNotification", after=0) == 1


async def test_TC_B_27_CS_reset_evse_with_ongoing_transaction_immediate(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # Before: State is EnergyTransferStarted
        tx = await octt.charging()
        # 1-2. ResetRequest Immediate for the EVSE: Accepted
        reply = await octt.call("Reset", type="Immediate", evseId=1)
        assert reply["status"] == "Accepted"
        # 3-4. the Ended TransactionEvent
        ended = await octt.expect("TransactionEvent", within_s=5, eventType="Ended")
        assert ended["transactionInfo"]["transactionId"] == tx
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"


# ------------------------------------------------------------------ reconnection


async def test_TC_B_57_CS_network_reconnection_after_connection_loss(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        wait_s = 20
        # Before: RetryBackOffRepeatTimes 2, RandomRange 0, WaitMinimum <configured>
        await octt.set_variables(
            OCPPCommCtrlr__RetryBackOffRepeatTimes="2",
            OCPPCommCtrlr__RetryBackOffRandomRange="0",
            OCPPCommCtrlr__RetryBackOffWaitMinimum=str(wait_s),
        )
        connections = octt.connections()
        # 1. TS closes the connection
        await octt.close_connection(refuse_reconnects=False)
        closed = octt.now()
        # 2-3. the station waits RetryBackOffWaitMinimum, reconnects; accepted
        await octt.advance(wait_s - 0.5)
        assert octt.connections() == connections
        await octt.advance(1)
        assert octt.connections() == connections + 1
        assert octt.now() - closed >= wait_s
        # 4. TS closes it again, and 6. will refuse the next attempt
        octt.ts.refuse_connections = 1
        await octt.close_connection(refuse_reconnects=False)
        attempts = len(octt.ts.connection_log)
        # 5. after WaitMinimum again: an attempt, refused
        await octt.advance(wait_s - 0.5)
        assert len(octt.ts.connection_log) == attempts
        await octt.advance(1)
        assert len(octt.ts.connection_log) == attempts + 1
        # 7-8. after twice that: the next attempt, accepted
        await octt.advance(2 * wait_s - 1)
        assert len(octt.ts.connection_log) == attempts + 1
        await octt.advance(1)
        assert len(octt.ts.connection_log) == attempts + 2
        assert octt.connections() == connections + 2
        # the same boot: statuses resumed, no BootNotification
        assert octt.count("BootNotification", after=0) == 1


# ------------------------------------------------------------------ B09 network profiles


async def test_TC_B_43_CS_set_new_network_connection_profile_rejected(
    rig: Callable[..., Any],
) -> None:
    async with rig() as octt:
        # 1-2. SetNetworkProfile for configurationSlot 999 (the station has 1 to 3):
        # Rejected; nothing changes, the connection stays
        connections = octt.connections()
        reply = await octt.call(
            "SetNetworkProfile",
            configurationSlot=999,
            connectionData={
                "messageTimeout": 30,
                "ocppCsmsUrl": octt.url,
                "ocppInterface": "Wired0",
                "ocppTransport": "JSON",
                "ocppVersion": "OCPP20",
                "securityProfile": 1,
            },
        )
        assert reply["status"] == "Rejected"
        await octt.next_heartbeat()
        assert octt.connections() == connections
