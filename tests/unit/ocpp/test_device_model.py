"""Value checks of the device model, per dataType (B05 'invalidly formatted values')."""

import re

import pytest

from charger.protocols.ocpp.device_model import DeviceModel, Key, Variable, check_value


def var(data_type: str, **extra: object) -> Variable:
    return Variable(Key("C", "V"), "", "ReadWrite", data_type, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (var("integer", min_limit=1), "5", None),
        (var("integer", min_limit=1), "0", "0 is below the minimum 1"),
        (var("integer", max_limit=10), "11", "11 is above the maximum 10"),
        (var("integer"), "1.5", "'1.5' is not an integer"),
        (var("decimal"), "1.5", None),
        (var("string", min_limit=16), "short-password", "shorter than 16 characters"),
        (var("string", max_limit=40), "p" * 41, "longer than 40 characters"),
        (var("decimal"), "x", "'x' is not a decimal"),
        (var("boolean"), "true", None),
        (var("boolean"), "True", "'True' is not true or false"),
        (var("dateTime"), "2026-11-22T03:00:00Z", None),
        (var("dateTime"), "tomorrow", "'tomorrow' is not a date-time"),
        (var("string", max_limit=3), "abcd", "longer than 3 characters"),
        (var("OptionList", values_list="A,B"), "B", None),
        (var("OptionList", values_list="A,B"), "C", "C not in A,B"),
        (var("MemberList", values_list="A,B,C"), "C,A", None),
        (var("MemberList", values_list="A,B,C"), "A,X", "X not in A,B,C"),
        (var("SequenceList", values_list="A,B"), "B,A", None),
    ],
)
def test_check_value(variable: Variable, value: str, problem: str | None) -> None:
    assert check_value(variable, value) == problem


def test_clock_date_time_is_the_station_clock_in_one_format_everywhere() -> None:
    """ClockCtrlr.DateTime in GetVariables and in a report: the station's clock (the OCPP
    client gives its CSMS-synchronised one), UTC with milliseconds at most."""
    clock = Variable(Key("ClockCtrlr", "DateTime"), "", "ReadOnly", "dateTime")
    dm = DeviceModel([clock])
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", dm.value("ClockCtrlr", "DateTime")
    )
    dm.clock = lambda: "2026-12-01T10:00:00.123Z"
    got = dm.get({"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}})
    assert got["attributeValue"] == "2026-12-01T10:00:00.123Z"
    [entry] = dm.report("FullInventory")
    assert entry["variableAttribute"][0]["value"] == "2026-12-01T10:00:00.123Z"


def test_every_reported_variable_passes_the_official_notify_report_schema() -> None:
    from charger.protocols.ocpp import rpc
    from charger.protocols.ocpp.settings import Connector, OcppSettings, build_device_model

    settings = OcppSettings("ws://x/ocpp", "CS1", "", "V", "M", "1", "1", (Connector("E", 1, 1),))
    for entry in build_device_model(settings).report("FullInventory"):
        page = {"requestId": 1, "generatedAt": "2026-12-01T00:00:00Z", "seqNo": 0}
        rpc.validate("NotifyReport", "Request", {**page, "tbc": False, "reportData": [entry]})
