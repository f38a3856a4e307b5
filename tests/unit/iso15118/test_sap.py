"""SupportedAppProtocol negotiation."""

from __future__ import annotations

from charger.protocols.exi import app_protocol as ap
from charger.protocols.iso15118.sap import Priority, V2gProtocol, negotiate

DIN, ISO2 = V2gProtocol.DIN_SPEC_70121, V2gProtocol.ISO_15118_2


def offer(*entries: tuple[str, int, int, int]) -> ap.SupportedAppProtocolReq:
    return ap.SupportedAppProtocolReq(
        app_protocol=[
            ap.AppProtocol(
                protocol_namespace=ns,
                version_number_major=major,
                version_number_minor=minor,
                schema_id=10 + i,
                priority=priority,
            )
            for i, (ns, major, minor, priority) in enumerate(entries)
        ]
    )


BOTH = offer(
    ("urn:din:70121:2012:MsgDef", 2, 0, 1),
    ("urn:iso:15118:2:2013:MsgDef", 2, 0, 2),
)


def test_the_evs_priority_decides_by_default() -> None:
    result = negotiate(BOTH, (ISO2, DIN))
    assert result.protocol is DIN
    assert result.response.schema_id == 10
    assert result.response.response_code is ap.ResponseCode.OK_SuccessfulNegotiation


def test_the_stations_order_decides_when_configured() -> None:
    result = negotiate(BOTH, (ISO2, DIN), Priority.STATION)
    assert result.protocol is ISO2 and result.response.schema_id == 11


def test_only_enabled_protocols_are_chosen() -> None:
    assert negotiate(BOTH, (ISO2,)).protocol is ISO2


def test_a_minor_version_difference_is_a_minor_deviation() -> None:
    result = negotiate(offer(("urn:iso:15118:2:2013:MsgDef", 2, 1, 1)), (ISO2,))
    assert result.protocol is ISO2
    assert (
        result.response.response_code is ap.ResponseCode.OK_SuccessfulNegotiationWithMinorDeviation
    )


def test_no_common_protocol() -> None:
    result = negotiate(offer(("urn:iso:15118:2:2010:MsgDef", 1, 0, 1)), (ISO2, DIN))
    assert result.protocol is None
    assert result.response.response_code is ap.ResponseCode.Failed_NoNegotiation
    assert result.response.schema_id is None
