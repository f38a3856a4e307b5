"""SampledValues from a Josev meter reading."""

from charger.protocols.ocpp import rpc
from charger.protocols.ocpp.measurands import sampled_values

METER = {
    "timestamp": "2026-11-22T03:00:00Z",
    "voltage": {"l1": 230.0, "l2": 231.0, "l3": 229.0},
    "current": {"l1": 16.0, "l2": 16.0, "l3": 0.0},
    "power_factor": 0.99,
    "frequency": 50.0,
    "total_active_energy_imported": 1234.5678,
    "total_reactive_energy_imported": 0.0,
}


def test_each_measurand_and_phase() -> None:
    values = sampled_values(
        METER,
        frozenset(
            {"Energy.Active.Import.Register", "Current.Import", "Power.Active.Import", "Frequency"}
        ),
        "Sample.Clock",
    )
    assert [
        (v["measurand"], v.get("phase"), v["value"], v["unitOfMeasure"]["unit"]) for v in values
    ] == [
        ("Energy.Active.Import.Register", None, 1234.568, "Wh"),
        ("Power.Active.Import", None, round((230 * 16 + 231 * 16) * 0.99, 3), "W"),
        ("Current.Import", "L1", 16.0, "A"),
        ("Current.Import", "L2", 16.0, "A"),
        ("Current.Import", "L3", 0.0, "A"),
        ("Frequency", None, 50.0, "Hz"),
    ]
    assert {v["context"] for v in values} == {"Sample.Clock"}
    rpc.validate(
        "MeterValues",
        "Request",
        {"evseId": 1, "meterValue": [{"timestamp": METER["timestamp"], "sampledValue": values}]},
    )


def test_unknown_measurands_are_left_out() -> None:
    assert sampled_values(METER, frozenset({"SoC"}), "Trigger") == []
