"""Every request a core answers has a FAILED answer that encodes as the protocol's
response to that request (what a sequence error, an unknown session or a refused
parameter sends): checked through the project's codec, decoded back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from charger.protocols import exi
from charger.protocols.iso15118.sap import V2gProtocol


@pytest.mark.parametrize(
    ("protocol", "dc"),
    [
        (V2gProtocol.DIN_SPEC_70121, True),
        (V2gProtocol.ISO_15118_2, True),
        (V2gProtocol.ISO_15118_2, False),
    ],
    ids=["din", "iso2-dc", "iso2-ac"],
)
def test_every_request_has_a_failed_response_that_encodes(
    make_ev: Callable[..., Any], protocol: V2gProtocol, dc: bool
) -> None:
    ev = make_ev(protocol, dc=dc)
    ev.sap()
    core = ev.session.core
    assert core is not None and len(core.HANDLERS) >= 11
    for kind in core.HANDLERS:
        body = core.failed_response(kind, "FAILED_SequenceError")
        decoded = exi.decode(ev.schema, exi.encode(core.wrap(body), ev.schema))
        answer = decoded.body.body_element
        expected = kind.__name__.removesuffix("Req") + "Res"  # DIN: SessionStop
        assert type(answer).__name__ == expected, kind
        assert str(answer.response_code) == "FAILED_SequenceError"
