"""SupportedAppProtocol (ISO 15118-2; DIN SPEC 70121 uses the same handshake): the
EV lists the protocols it speaks with a priority each; the SECC answers with the one to
use, and that choice picks the session core. Pure functions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from charger.protocols import exi
from charger.protocols.exi import app_protocol


class V2gProtocol(enum.StrEnum):
    """A V2G application protocol the SECC can speak (names as in iso15118_state_info)."""

    DIN_SPEC_70121 = "DIN_SPEC_70121"
    ISO_15118_2 = "ISO_15118_2"

    @property
    def namespace(self) -> str:
        return _NAMESPACES[self][0]

    @property
    def major(self) -> int:
        return _NAMESPACES[self][1]

    @property
    def minor(self) -> int:
        return _NAMESPACES[self][2]

    @property
    def schema(self) -> exi.Schema:
        return exi.Schema.from_namespace(self.namespace)


# ProtocolNamespace, VersionNumberMajor, VersionNumberMinor this SECC implements.
_NAMESPACES: dict[V2gProtocol, tuple[str, int, int]] = {
    V2gProtocol.DIN_SPEC_70121: ("urn:din:70121:2012:MsgDef", 2, 0),
    V2gProtocol.ISO_15118_2: ("urn:iso:15118:2:2013:MsgDef", 2, 0),
}


class Priority(enum.StrEnum):
    EV = "ev"  # the EV's Priority decides among the enabled protocols
    STATION = "station"  # the station's order of `protocols` decides


@dataclass(frozen=True, slots=True)
class Negotiated:
    protocol: V2gProtocol | None  # None: no common protocol
    response: app_protocol.SupportedAppProtocolRes


def negotiate(
    request: app_protocol.SupportedAppProtocolReq,
    enabled: tuple[V2gProtocol, ...],
    priority: Priority = Priority.EV,
) -> Negotiated:
    """The response to a supportedAppProtocolReq and the protocol it selects."""
    candidates: list[tuple[int, int, app_protocol.AppProtocol, V2gProtocol]] = []
    for offer in request.app_protocol:
        for rank, protocol in enumerate(enabled):
            if offer.protocol_namespace == protocol.namespace and (
                offer.version_number_major == protocol.major
            ):
                station_rank = rank if priority is Priority.STATION else 0
                candidates.append((station_rank, offer.priority, offer, protocol))
    if not candidates:
        return Negotiated(
            None,
            app_protocol.SupportedAppProtocolRes(
                response_code=app_protocol.ResponseCode.Failed_NoNegotiation
            ),
        )
    _, _, offer, protocol = min(candidates, key=lambda c: (c[0], c[1]))
    code = (
        app_protocol.ResponseCode.OK_SuccessfulNegotiation
        if offer.version_number_minor == protocol.minor
        else app_protocol.ResponseCode.OK_SuccessfulNegotiationWithMinorDeviation
    )
    return Negotiated(
        protocol,
        app_protocol.SupportedAppProtocolRes(response_code=code, schema_id=offer.schema_id),
    )
