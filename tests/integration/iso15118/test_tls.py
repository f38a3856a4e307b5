"""ISO 15118-2 over TLS 1.2: the cipher suites of the standard, the SECC's chain from a
generated V2G PKI, session resumption, and what is refused."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from charger.protocols.exi import iso2
from charger.protocols.iso15118 import sdp
from charger.protocols.iso15118.core import Outcome
from charger.protocols.iso15118.tls import TlsFiles


def tls_settings(pki: Any, mode: str = "require") -> dict[str, Any]:
    return {"tls": mode, "tls_files": TlsFiles(pki.chain, pki.key, pki.password_file)}


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"])
async def test_an_ac_session_over_tls(
    start_secc: Callable[..., Any],
    v2g_pki: Any,
    ev_tls: Callable[..., ssl.SSLContext],
    req: Any,
    charge: Callable[..., Any],
    cipher: str,
) -> None:
    rig = await start_secc(**tls_settings(v2g_pki))
    ev = await rig.ev(tls=ev_tls(cipher))
    tls = ev.writer.get_extra_info("ssl_object")
    assert tls.version() == "TLSv1.2" and tls.cipher()[0] == cipher
    await charge(ev, req)
    assert (await ev.request(req.power_delivery("Stop"))).response_code is iso2.ResponseCode.OK
    assert (await ev.request(req.session_stop())).response_code is iso2.ResponseCode.OK
    await ev.close()
    assert (await rig.end()).outcome is Outcome.COMPLETED


def handshake(address: str, iface: str, port: int, context: ssl.SSLContext, session: Any) -> Any:
    with (
        socket.create_connection((f"{address}%{iface}", port), timeout=5) as raw,
        context.wrap_socket(raw, session=session) as tls,
    ):
        return tls.session, tls.session_reused


async def test_a_reconnecting_ev_resumes_its_tls_session(
    start_secc: Callable[..., Any], v2g_pki: Any, ev_tls: Callable[..., ssl.SSLContext]
) -> None:
    rig = await start_secc(**tls_settings(v2g_pki))
    context = ev_tls()
    address, port, security = await rig.sdp(sdp.Security.TLS)
    assert security is sdp.Security.TLS
    mark = len(rig.messages)
    first, reused = await asyncio.to_thread(handshake, address, rig.veth.ev, port, context, None)
    assert not reused
    await rig.end()  # the first connection ended without a session
    await rig.wait_for(  # state F, then after T_step_EF 5 % again: the EV may retry
        lambda m: (
            m.name == "cp_pwm"
            and m.type == "request"
            and m.data["hlc"]
            and not m.data["fault_state"]
        ),
        after=mark,
    )
    _, reused = await asyncio.to_thread(handshake, address, rig.veth.ev, port, context, first)
    assert reused


async def test_what_the_tls_server_refuses(
    start_secc: Callable[..., Any], v2g_pki: Any, ev_tls: Callable[..., ssl.SSLContext]
) -> None:
    rig = await start_secc(**tls_settings(v2g_pki))
    address, port, _ = await rig.sdp(sdp.Security.TLS)
    for context in (
        ev_tls(tls13=True),  # ISO 15118-2 is TLS 1.2
        ev_tls("ECDHE-ECDSA-AES256-SHA384"),  # not one of the standard's suites
    ):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.to_thread(handshake, address, rig.veth.ev, port, context, None)
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no V2G root: the chain fails
    untrusting.check_hostname = False
    untrusting.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(handshake, address, rig.veth.ev, port, untrusting, None)


async def test_required_tls_is_answered_to_an_ev_asking_for_tcp(
    start_secc: Callable[..., Any], v2g_pki: Any
) -> None:
    rig = await start_secc(**tls_settings(v2g_pki, "require"))
    _, port, security = await rig.sdp(sdp.Security.NONE)
    assert security is sdp.Security.TLS and port == rig.service.ports["tls"]


async def test_offered_tls_follows_the_evs_request(
    start_secc: Callable[..., Any], v2g_pki: Any
) -> None:
    rig = await start_secc(**tls_settings(v2g_pki, "offer"))
    _, tcp, plain = await rig.sdp(sdp.Security.NONE)
    _, tls, secured = await rig.sdp(sdp.Security.TLS)
    assert (plain, secured) == (sdp.Security.NONE, sdp.Security.TLS)
    assert {tcp, tls} == {rig.service.ports["tcp"], rig.service.ports["tls"]}
