"""Fixtures of the SECC's integration tests: real sockets on a veth pair (root only, as
in CI), the SECC of `charger secc` (`app.secc_station` + `standalone.serving`) in this
process with the simulated power path behind it, and an EV client speaking SDP, V2GTP
over TCP or TLS and EXI with the project's codec."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from charger import app, config
from charger.bus.api import Message
from charger.protocols import exi
from charger.protocols.exi import app_protocol as ap
from charger.protocols.exi import iso2
from charger.protocols.iso15118 import sdp, standalone, v2gtp
from charger.protocols.iso15118.core import CoreSettings, End, Timers
from charger.protocols.iso15118.service import secc_settings
from charger.protocols.iso15118.v2gtp import Frame, FrameReader, PayloadType

pytestmark = pytest.mark.integration

EVSE_ID = "DE*TST*E0001"
ISO2_NS = "urn:iso:15118:2:2013:MsgDef"


@dataclass(frozen=True)
class Veth:
    secc: str  # the SECC's end
    ev: str  # the EV client's end


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _link_local(iface: str) -> str | None:
    try:
        return sdp.link_local_address(iface)
    except OSError:
        return None


@pytest.fixture(scope="session")
def veth() -> Iterator[Veth]:
    """A veth pair with IPv6 link-local addresses (DAD off): SDP multicast and TCP pass
    between its ends like over a PLC link."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a veth pair (CI runs as root)")
    pair = Veth(f"v2gs{os.getpid() % 100000}", f"v2ge{os.getpid() % 100000}")
    subprocess.run(["ip", "link", "del", pair.secc], capture_output=True, timeout=10)
    _ip("link", "add", pair.secc, "type", "veth", "peer", "name", pair.ev)
    try:
        for iface in (pair.secc, pair.ev):
            for key, value in (("accept_dad", 0), ("addr_gen_mode", 0), ("disable_ipv6", 0)):
                with open(f"/proc/sys/net/ipv6/conf/{iface}/{key}", "w") as f:
                    f.write(str(value))
            _ip("link", "set", iface, "multicast", "on", "up")
        deadline = time.monotonic() + 10
        while not (_link_local(pair.secc) and _link_local(pair.ev)):
            assert time.monotonic() < deadline, "no link-local addresses on the veth pair"
            time.sleep(0.05)
        yield pair
    finally:
        subprocess.run(["ip", "link", "del", pair.secc], capture_output=True, timeout=10)


FAST = Timers(
    sequence_s=1.0,
    communication_setup_s=3.0,
    cable_check_s=5.0,
    precharge_s=3.0,
    ongoing_s=5.0,
    linger_s=0.5,
    stop_reaction_s=1.0,
)


def station_config(evse: str = "", extra: str = "") -> config.Config:
    text = f"""
[bus]
request_timeout_s = 2
[authorization]
mode = "free"
[[evse]]
id = 1
evse_id = "{EVSE_ID}"
max_current_a = 32
{evse}
[sim]
ev_reaction_s = 0
ev_max_current_a = 16
time_scale = 100
{extra}
"""
    return config.parse(tomllib.loads(text), "test")


@dataclass
class Rig:
    """The SECC serving on the veth pair with the simulated power path behind it."""

    veth: Veth
    station: app.SeccStation
    secc: standalone.Serving
    messages: list[Message[Any]] = field(default_factory=list)
    sdp_port: int = 0

    @property
    def service(self) -> Any:
        return self.secc.service

    @property
    def sim(self) -> Any:
        return self.station.board.evse(1)  # type: ignore[attr-defined]

    def names(self, after: int = 0) -> list[str]:
        return [f"{m.name}.{m.type}" for m in self.messages[after:]]

    async def wait_for(
        self, predicate: Callable[[Message[Any]], bool], after: int = 0, timeout_s: float = 5.0
    ) -> Message[Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.messages[after:]:
                    if predicate(message):
                        return message
                await asyncio.sleep(0.005)

    async def unplug(self) -> None:
        """Pulls the plug and waits until the SECC has seen it go: the CP's state A on
        the bus (the SECC folds every bus message as it is published)."""
        mark = len(self.messages)
        self.sim.unplug()
        await self.wait_for(
            lambda m: m.name == "cp_status" and m.type == "update" and m.data["state"][:1] == "A",
            after=mark,
        )

    async def end(self, timeout_s: float = 5.0) -> End:
        async with asyncio.timeout(timeout_s):
            return await self.secc.ends.get()

    async def sdp(self, security: sdp.Security) -> tuple[str, int, sdp.Security]:
        return await sdp_request(self.veth.ev, self.sdp_port, security)

    async def ev(self, *, tls: ssl.SSLContext | None = None) -> EvClient:
        security = sdp.Security.TLS if tls is not None else sdp.Security.NONE
        address, port, answered = await self.sdp(security)
        assert answered is security
        client = EvClient(self.veth.ev, address, port, tls)
        await client.connect()
        return client


@pytest.fixture
async def start_secc(veth: Veth) -> AsyncIterator[Callable[..., Any]]:
    """start_secc(timers=FAST, **SeccSettings fields) -> an async context manager, a Rig."""
    stack = contextlib.AsyncExitStack()

    async def start(
        *,
        timers: Timers = FAST,
        core: dict[str, Any] | None = None,
        evse: str = "",
        **overrides: Any,
    ) -> Rig:
        cfg = station_config(evse)
        base = secc_settings(cfg.iso15118)
        settings = dataclasses.replace(
            base,
            core=CoreSettings(timers=timers, **(core or {})),
            sdp_port=free_udp_port(),
            step_ef_s=0.2,
            contactor_wait_s=1.0,
            **overrides,
        )
        station = await stack.enter_async_context(app.secc_station(cfg, veth.secc, validate=True))
        rig_messages: list[Message[Any]] = []
        station.bus.subscribe_all(rig_messages.append)
        setup = app.secc_evse(station.evse, veth.secc)
        serving = await stack.enter_async_context(
            standalone.serving(station.bus, setup, settings, station.car)
        )
        async with asyncio.timeout(5):
            await serving.service.ready.wait()
        return Rig(veth, station, serving, rig_messages, settings.sdp_port)

    yield start
    await stack.aclose()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])


async def sdp_request(
    iface: str, port: int, security: sdp.Security
) -> tuple[str, int, sdp.Security]:
    """One SDP exchange as an EV does it: multicast request, unicast response."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("::", 0))
    sock.setblocking(False)
    try:
        request = v2gtp.encode(PayloadType.SDP_REQUEST, bytes([security, 0x00]))
        index = socket.if_nametoindex(iface)
        for _ in range(20):
            await loop.sock_sendto(sock, request, (sdp.MULTICAST_ADDRESS, port, 0, index))
            try:
                async with asyncio.timeout(0.25):
                    data = await loop.sock_recv(sock, 64)
            except TimeoutError:
                continue
            frame = v2gtp.decode_datagram(data, allowed=(PayloadType.SDP_RESPONSE,), max_payload=20)
            address = socket.inet_ntop(socket.AF_INET6, frame.payload[:16])
            port_, answered, _ = struct.unpack("!HBB", frame.payload[16:])
            return address, port_, sdp.Security(answered)
        raise AssertionError("no SDP response")
    finally:
        sock.close()


class EvClient:
    """An EV's V2GTP connection: raw bytes, frames, or ISO 15118-2 messages."""

    def __init__(self, iface: str, address: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.iface, self.address, self.port, self.tls = iface, address, port, tls
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.frames = FrameReader(max_payload=65536)
        self.pending: list[Frame] = []
        self.session_id = b"\x00"

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            f"{self.address}%{self.iface}", self.port, ssl=self.tls, server_hostname=None
        )

    async def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, payload: bytes) -> None:
        await self.write(v2gtp.encode(PayloadType.EXI, payload))

    async def frame(self, timeout_s: float = 3.0) -> Frame | None:
        """The next message from the SECC; None when it closed the connection."""
        assert self.reader is not None
        async with asyncio.timeout(timeout_s):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.pending += self.frames.feed(data)
        return self.pending.pop(0)

    async def closed_by_secc(self, timeout_s: float = 3.0) -> bool:
        """True once the SECC closed the connection (whatever it still sent before)."""
        assert self.reader is not None
        try:
            async with asyncio.timeout(timeout_s):
                while await self.reader.read(65536):
                    pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def sap(self) -> Any:
        request = ap.SupportedAppProtocolReq(
            app_protocol=[
                ap.AppProtocol(
                    protocol_namespace=ISO2_NS,
                    version_number_major=2,
                    version_number_minor=0,
                    schema_id=1,
                    priority=1,
                )
            ]
        )
        await self.send(exi.encode(request))
        frame = await self.frame()
        assert frame is not None
        return exi.decode(exi.Schema.APP_PROTOCOL, frame.payload)

    def encode(self, body: object, session_id: bytes | None = None) -> bytes:
        sid = self.session_id if session_id is None else session_id
        return exi.encode(
            iso2.V2G_Message(
                header=iso2.MessageHeader(session_id=sid), body=iso2.Body(body_element=body)
            )
        )

    async def request(self, body: object, session_id: bytes | None = None) -> Any:
        await self.send(self.encode(body, session_id))
        frame = await self.frame()
        assert frame is not None, f"the SECC closed the connection instead of answering {body}"
        message = exi.decode(exi.Schema.ISO2, frame.payload)
        if isinstance(message.body.body_element, iso2.SessionSetupRes):
            self.session_id = message.header.session_id
        return message.body.body_element

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


class Requests:
    """ISO 15118-2 EIM AC requests as the harness's EVCC sends them."""

    def pv(self, value: int, unit: str, multiplier: int = 0) -> iso2.PhysicalValue:
        return iso2.PhysicalValue(value=value, multiplier=multiplier, unit=iso2.UnitSymbol(unit))

    def session_setup(self) -> Any:
        return iso2.SessionSetupReq(evccid=bytes.fromhex("02000000E501"))

    def service_discovery(self) -> Any:
        return iso2.ServiceDiscoveryReq()

    def payment(self) -> Any:
        return iso2.PaymentServiceSelectionReq(
            selected_payment_option=iso2.PaymentOption.ExternalPayment,
            selected_service_list=iso2.SelectedServiceList(
                selected_service=[iso2.SelectedService(service_id=1)]
            ),
        )

    def authorization(self) -> Any:
        return iso2.AuthorizationReq()

    def cpd(self) -> Any:
        return iso2.ChargeParameterDiscoveryReq(
            requested_energy_transfer_mode=iso2.EnergyTransferMode.AC_three_phase_core,
            ev_charge_parameter=iso2.AC_EVChargeParameter(
                departure_time=0,
                e_amount=self.pv(60, "Wh"),
                ev_max_voltage=self.pv(400, "V"),
                ev_max_current=self.pv(16, "A"),
                ev_min_current=self.pv(6, "A"),
            ),
        )

    def power_delivery(self, progress: str) -> Any:
        return iso2.PowerDeliveryReq(
            charge_progress=iso2.ChargeProgress(progress), sa_schedule_tuple_id=1
        )

    def charging_status(self) -> Any:
        return iso2.ChargingStatusReq()

    def session_stop(self, how: str = "Terminate") -> Any:
        return iso2.SessionStopReq(charging_session=iso2.ChargingSession(how))

    # DC (ISO 15118-2 DC_extended), as the harness's EVCC sends them

    def dc_status(self, soc: int = 10) -> Any:
        return iso2.DC_EVStatus(
            ev_ready=True, ev_error_code=iso2.DC_EVErrorCode.NO_ERROR, evresssoc=soc
        )

    def cpd_dc(self) -> Any:
        return iso2.ChargeParameterDiscoveryReq(
            requested_energy_transfer_mode=iso2.EnergyTransferMode.DC_extended,
            ev_charge_parameter=iso2.DC_EVChargeParameter(
                dc_ev_status=self.dc_status(),
                ev_maximum_current_limit=self.pv(100, "A"),
                ev_maximum_voltage_limit=self.pv(450, "V"),
                ev_maximum_power_limit=self.pv(4000, "W", 1),
            ),
        )

    def cable_check(self) -> Any:
        return iso2.CableCheckReq(dc_ev_status=self.dc_status())

    def pre_charge(self, volts: int) -> Any:
        return iso2.PreChargeReq(
            dc_ev_status=self.dc_status(),
            ev_target_voltage=self.pv(volts, "V"),
            ev_target_current=self.pv(1, "A"),
        )

    def power_delivery_dc(self, progress: str) -> Any:
        return iso2.PowerDeliveryReq(
            charge_progress=iso2.ChargeProgress(progress),
            sa_schedule_tuple_id=1,
            ev_power_delivery_parameter=iso2.DC_EVPowerDeliveryParameter(
                dc_ev_status=self.dc_status(), charging_complete=progress == "Stop"
            ),
        )

    def current_demand(self, volts: int, amps: int) -> Any:
        return iso2.CurrentDemandReq(
            dc_ev_status=self.dc_status(30),
            ev_target_current=self.pv(amps, "A"),
            charging_complete=False,
            ev_target_voltage=self.pv(volts, "V"),
            ev_maximum_voltage_limit=self.pv(450, "V"),
        )

    def welding(self) -> Any:
        return iso2.WeldingDetectionReq(dc_ev_status=self.dc_status(90))


@pytest.fixture
def req() -> Requests:
    return Requests()


async def _charge(ev: EvClient, req: Requests) -> None:
    assert (await ev.sap()).response_code is ap.ResponseCode.OK_SuccessfulNegotiation
    for body in (req.session_setup(), req.service_discovery(), req.payment()):
        assert str((await ev.request(body)).response_code).startswith("OK")
    # EIM: Ongoing until the driver (here: free charging) is authorized; the EV asks again
    async with asyncio.timeout(10):
        while True:
            auth = await ev.request(req.authorization())
            if auth.evse_processing is iso2.EVSEProcessing.Finished:
                break
            await asyncio.sleep(0.05)
    assert (await ev.request(req.cpd())).evse_processing is iso2.EVSEProcessing.Finished
    assert (await ev.request(req.power_delivery("Start"))).response_code is iso2.ResponseCode.OK


@pytest.fixture
def charge() -> Callable[[EvClient, Requests], Any]:
    """await charge(ev, req): SAP ... PowerDelivery(Start), every answer OK."""
    return _charge


# ---------------------------------------------------------------- a V2G test PKI


@dataclass(frozen=True)
class V2gPki:
    root: Any  # path of the V2G root CA certificate (PEM)
    chain: Any  # SECC leaf, CPO sub-CA 2, CPO sub-CA 1 (PEM), what the SECC presents
    key: Any  # the leaf's private key, encrypted PEM
    password_file: Any


def _make_pki(directory: Any) -> V2gPki:
    """V2G root CA -> CPO sub-CA 1 -> CPO sub-CA 2 -> SECC leaf, ECDSA P-256 / SHA-256,
    as ISO 15118-2 Annex F profiles them (generated with `cryptography`)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Charger Tests"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            ]
        )

    def cert(
        subject: str, key: Any, issuer: tuple[str, Any] | None, ca: bool, pathlen: int | None
    ) -> x509.Certificate:
        issuer_name, issuer_key = (subject, key) if issuer is None else issuer
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=not ca,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )
        return builder.sign(issuer_key, hashes.SHA256())

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    root = cert("V2GRootCA", keys[0], None, True, 2)
    sub1 = cert("CPOSubCA1", keys[1], ("V2GRootCA", keys[0]), True, 1)
    sub2 = cert("CPOSubCA2", keys[2], ("CPOSubCA1", keys[1]), True, 0)
    leaf = cert("SECCCert", keys[3], ("CPOSubCA2", keys[2]), False, None)
    pem = serialization.Encoding.PEM
    pki = V2gPki(
        directory / "v2gRootCACert.pem",
        directory / "cpoCertChain.pem",
        directory / "seccLeaf.key",
        directory / "seccLeafPassword.txt",
    )
    pki.root.write_bytes(root.public_bytes(pem))
    pki.chain.write_bytes(b"".join(c.public_bytes(pem) for c in (leaf, sub2, sub1)))
    pki.password_file.write_text("12345\n")
    pki.key.write_bytes(
        keys[3].private_bytes(
            pem,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"12345"),
        )
    )
    return pki


@pytest.fixture(scope="session")
def v2g_pki(tmp_path_factory: pytest.TempPathFactory) -> V2gPki:
    return _make_pki(tmp_path_factory.mktemp("v2g-pki"))


@pytest.fixture
def ev_tls(v2g_pki: V2gPki) -> Callable[..., ssl.SSLContext]:
    """ev_tls(ciphers=..., tls13=False): an EV's TLS client context trusting the V2G root
    (no host name check: the EV checks the chain only, as ISO 15118-2 has it)."""

    def make(ciphers: str = "ECDHE-ECDSA-AES128-SHA256", *, tls13: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(v2g_pki.root)
        if tls13:
            context.minimum_version = ssl.TLSVersion.TLSv1_3
        else:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
        return context

    return make
