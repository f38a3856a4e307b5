"""HomePlug AV / Green PHY management messages (ethertype 0x88E1) used by SLAC.

Every message is a frozen dataclass with named fields; `encode_frame` builds a complete
Ethernet frame (padded to the 60-byte minimum) and `decode_frame` parses one, raising
`MmeError` with the offset and the reason for anything short or inconsistent. Layouts
follow ISO 15118-3 Annex A and the HomePlug Green PHY specification; multi-byte
integers are little-endian, MAC addresses, run ids, NIDs and keys are byte strings.
Qualcomm vendor messages (MMV 0, OUI 00:B0:52) cover what a station needs from a
QCA7000: firmware version, link status and reset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

ETHERTYPE_HOMEPLUG = 0x88E1
MMV_HPAV_1_1 = 0x01
MMV_VENDOR = 0x00
QUALCOMM_OUI = b"\x00\xb0\x52"
ETH_MIN_FRAME = 60  # without FCS
ETH_HEADER = 14
HPAV_HEADER = 5  # MMV, MMTYPE, FMSN, FMID
VENDOR_HEADER = 6  # MMV, MMTYPE, OUI
BROADCAST = b"\xff" * 6
LOCAL_MODEM = b"\x00\xb0\x52\x00\x00\x01"  # "the local device" address of QCA modems
NUM_GROUPS = 58  # ISO 15118-3: AAG carrier groups
VERSION_FIELD = 64  # VS_SW_VER.CNF: QCA firmware sends its version NUL-padded to 64 bytes
VERSION_MAX = 255  # the length byte's limit

# Values ISO 15118-3 fixes for the SLAC messages.
APPLICATION_TYPE_PEV_EVSE = 0x00
SECURITY_NONE = 0x00
SECURITY_PUBLIC_KEY = 0x01
MVF_LENGTH_MATCH_REQ = 0x3E
MVF_LENGTH_MATCH_CNF = 0x56


class MmeError(ValueError):
    """A frame is not a valid management message; str() says where and why."""


@dataclass(frozen=True, slots=True)
class Mme:
    MMTYPE: ClassVar[int]
    VENDOR: ClassVar[bool] = False
    FORMAT: ClassVar[str] = ""  # struct layout of the fixed fields, in field order
    SIZES: ClassVar[dict[str, int]] = {}  # byte-string fields and their exact length

    def payload(self) -> bytes:
        values = [getattr(self, f.name) for f in fields(self)]
        for name, size in self.SIZES.items():
            if len(getattr(self, name)) != size:
                raise MmeError(
                    f"{type(self).__name__}.{name} must be {size} bytes, "
                    f"got {len(getattr(self, name))}"
                )
        try:
            return struct.pack("<" + self.FORMAT, *values)
        except struct.error as exc:
            raise MmeError(f"{type(self).__name__}: {exc}") from None

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        size = struct.calcsize("<" + cls.FORMAT)
        if len(payload) < size:
            raise MmeError(
                f"{cls.__name__} at offset {offset}: payload is {len(payload)} bytes, needs {size}"
            )
        return cls(*struct.unpack_from("<" + cls.FORMAT, payload))


M = TypeVar("M", bound=Mme)
_REGISTRY: dict[tuple[bool, int], type[Mme]] = {}


def _register(cls: type[M]) -> type[M]:
    _REGISTRY[(cls.VENDOR, cls.MMTYPE)] = cls
    return cls


# ------------------------------------------------------------------ key management


@_register
@dataclass(frozen=True, slots=True)
class CmSetKeyReq(Mme):
    MMTYPE = 0x6008
    FORMAT = "B4s4sBHBB7sB16s"
    SIZES = {"my_nonce": 4, "your_nonce": 4, "nid": 7, "new_key": 16}
    key_type: int  # 0x01 = NMK
    my_nonce: bytes
    your_nonce: bytes
    pid: int  # 0x04 = HLE protocol
    prn: int
    pmn: int
    cco_capability: int
    nid: bytes
    new_eks: int  # 0x01 = NMK
    new_key: bytes


@_register
@dataclass(frozen=True, slots=True)
class CmSetKeyCnf(Mme):
    MMTYPE = 0x6009
    FORMAT = "B4s4sBHBB"
    SIZES = {"my_nonce": 4, "your_nonce": 4}
    result: int  # QCA firmware answers 0x01 on success (HomePlug AV 1.0 meaning)
    my_nonce: bytes
    your_nonce: bytes
    pid: int
    prn: int
    pmn: int
    cco_capability: int


@_register
@dataclass(frozen=True, slots=True)
class CmAmpMapReq(Mme):
    """Amplitude map: one 4-bit attenuation per carrier, two per byte."""

    MMTYPE = 0x601C
    amlen: int
    amdata: bytes

    def payload(self) -> bytes:
        if len(self.amdata) != (self.amlen + 1) // 2:
            raise MmeError(
                f"CmAmpMapReq.amdata must be {(self.amlen + 1) // 2} bytes for "
                f"{self.amlen} carriers, got {len(self.amdata)}"
            )
        return struct.pack("<H", self.amlen) + self.amdata

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        if len(payload) < 2:
            raise MmeError(
                f"CmAmpMapReq at offset {offset}: payload is {len(payload)} bytes, needs 2"
            )
        (amlen,) = struct.unpack_from("<H", payload)
        size = (amlen + 1) // 2
        if len(payload) < 2 + size:
            raise MmeError(
                f"CmAmpMapReq at offset {offset + 2}: {amlen} carriers need "
                f"{size} bytes, {len(payload) - 2} present"
            )
        return cls(amlen, payload[2 : 2 + size])


@_register
@dataclass(frozen=True, slots=True)
class CmAmpMapCnf(Mme):
    MMTYPE = 0x601D
    FORMAT = "B"
    resp_type: int  # 0 = success


# ------------------------------------------------------------------ SLAC


@_register
@dataclass(frozen=True, slots=True)
class CmSlacParmReq(Mme):
    MMTYPE = 0x6064
    application_type: int
    security_type: int
    run_id: bytes
    cipher_suites: tuple[int, ...] = ()  # only with security_type 1

    def payload(self) -> bytes:
        _check_len(self, "run_id", 8)
        data = struct.pack("<BB8s", self.application_type, self.security_type, self.run_id)
        if self.security_type == SECURITY_PUBLIC_KEY:
            data += struct.pack(
                f"<B{len(self.cipher_suites)}H", len(self.cipher_suites), *self.cipher_suites
            )
        return data

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        _need(cls, payload, 10, offset)
        app, sec, run_id = struct.unpack_from("<BB8s", payload)
        suites: tuple[int, ...] = ()
        if sec == SECURITY_PUBLIC_KEY:
            _need(cls, payload, 11, offset)
            count = payload[10]
            _need(cls, payload, 11 + 2 * count, offset)
            suites = struct.unpack_from(f"<{count}H", payload, 11)
        return cls(app, sec, run_id, suites)


@_register
@dataclass(frozen=True, slots=True)
class CmSlacParmCnf(Mme):
    MMTYPE = 0x6065
    msound_target: bytes
    num_sounds: int
    time_out: int  # units of 100 ms (TT_EVSE_match_MNBC)
    resp_type: int
    forwarding_sta: bytes
    application_type: int
    security_type: int
    run_id: bytes
    cipher_suite: int | None = None  # only with security_type 1

    _FIXED: ClassVar[str] = "<6sBBB6sBB8s"

    def payload(self) -> bytes:
        for name, size in (("msound_target", 6), ("forwarding_sta", 6), ("run_id", 8)):
            _check_len(self, name, size)
        data = struct.pack(
            self._FIXED,
            self.msound_target,
            self.num_sounds,
            self.time_out,
            self.resp_type,
            self.forwarding_sta,
            self.application_type,
            self.security_type,
            self.run_id,
        )
        if self.security_type == SECURITY_PUBLIC_KEY:
            data += struct.pack("<H", self.cipher_suite or 0)
        return data

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        size = struct.calcsize(cls._FIXED)
        _need(cls, payload, size, offset)
        target, sounds, time_out, resp, sta, app, sec, run_id = struct.unpack_from(
            cls._FIXED, payload
        )
        suite = None
        if sec == SECURITY_PUBLIC_KEY:
            _need(cls, payload, size + 2, offset)
            (suite,) = struct.unpack_from("<H", payload, size)
        return cls(target, sounds, time_out, resp, sta, app, sec, run_id, suite)


@_register
@dataclass(frozen=True, slots=True)
class CmStartAttenCharInd(Mme):
    MMTYPE = 0x606A
    FORMAT = "BBBBB6s8s"
    SIZES = {"forwarding_sta": 6, "run_id": 8}
    application_type: int
    security_type: int
    num_sounds: int
    time_out: int
    resp_type: int
    forwarding_sta: bytes
    run_id: bytes


@_register
@dataclass(frozen=True, slots=True)
class CmMnbcSoundInd(Mme):
    """Spec layout (71-byte frame). Older plc-utils `pev` sends a 64-byte variant with a
    17-byte random field after the run id; both decode, the run id is at the same place."""

    MMTYPE = 0x6076
    application_type: int
    security_type: int
    sender_id: bytes
    count: int  # sounds still to come after this one
    run_id: bytes
    rnd: bytes = bytes(16)

    _HEAD: ClassVar[str] = "<BB17sB8s"

    def payload(self) -> bytes:
        _check_len(self, "sender_id", 17)
        _check_len(self, "run_id", 8)
        _check_len(self, "rnd", 16)
        return (
            struct.pack(
                self._HEAD,
                self.application_type,
                self.security_type,
                self.sender_id,
                self.count,
                self.run_id,
            )
            + bytes(8)
            + self.rnd
        )

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        head = struct.calcsize(cls._HEAD)
        _need(cls, payload, head, offset)
        app, sec, sender_id, count, run_id = struct.unpack_from(cls._HEAD, payload)
        tail = payload[head:]
        rnd = tail[8:24] if len(tail) >= 24 else bytes(16)
        return cls(app, sec, sender_id, count, run_id, rnd)


@_register
@dataclass(frozen=True, slots=True)
class CmAttenProfileInd(Mme):
    """Sent by the EVSE's own modem for each sound it received."""

    MMTYPE = 0x6086
    pev_mac: bytes
    aag: bytes  # attenuation per carrier group, dB

    def payload(self) -> bytes:
        _check_len(self, "pev_mac", 6)
        return struct.pack("<6sBB", self.pev_mac, len(self.aag), 0) + self.aag

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        _need(cls, payload, 8, offset)
        pev_mac, groups, _ = struct.unpack_from("<6sBB", payload)
        if len(payload) < 8 + groups:
            raise MmeError(
                f"CmAttenProfileInd at offset {offset + 6}: NumGroups {groups} "
                f"but {len(payload) - 8} AAG bytes present"
            )
        return cls(pev_mac, payload[8 : 8 + groups])


@_register
@dataclass(frozen=True, slots=True)
class CmAttenCharInd(Mme):
    MMTYPE = 0x606E
    application_type: int
    security_type: int
    source_address: bytes  # the PEV's MAC
    run_id: bytes
    source_id: bytes
    resp_id: bytes
    num_sounds: int
    aag: bytes

    _HEAD: ClassVar[str] = "<BB6s8s17s17sBB"

    def payload(self) -> bytes:
        for name, size in (
            ("source_address", 6),
            ("run_id", 8),
            ("source_id", 17),
            ("resp_id", 17),
        ):
            _check_len(self, name, size)
        return (
            struct.pack(
                self._HEAD,
                self.application_type,
                self.security_type,
                self.source_address,
                self.run_id,
                self.source_id,
                self.resp_id,
                self.num_sounds,
                len(self.aag),
            )
            + self.aag
        )

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        head = struct.calcsize(cls._HEAD)
        _need(cls, payload, head, offset)
        app, sec, source, run_id, source_id, resp_id, sounds, groups = struct.unpack_from(
            cls._HEAD, payload
        )
        if len(payload) < head + groups:
            raise MmeError(
                f"CmAttenCharInd at offset {offset + head - 1}: NumGroups {groups} "
                f"but {len(payload) - head} AAG bytes present"
            )
        aag = payload[head : head + groups]
        return cls(app, sec, source, run_id, source_id, resp_id, sounds, aag)


@_register
@dataclass(frozen=True, slots=True)
class CmAttenCharRsp(Mme):
    MMTYPE = 0x606F
    FORMAT = "BB6s8s17s17sB"
    SIZES = {"source_address": 6, "run_id": 8, "source_id": 17, "resp_id": 17}
    application_type: int
    security_type: int
    source_address: bytes
    run_id: bytes
    source_id: bytes
    resp_id: bytes
    result: int  # 0 = success


@_register
@dataclass(frozen=True, slots=True)
class CmValidateReq(Mme):
    MMTYPE = 0x6078
    FORMAT = "BBB"
    signal_type: int  # 0 = PEV S2 toggles on CP
    timer: int  # units of 100 ms; 0 in the first (ready?) request
    result: int  # 1 = ready


@_register
@dataclass(frozen=True, slots=True)
class CmValidateCnf(Mme):
    MMTYPE = 0x6079
    FORMAT = "BBB"
    signal_type: int
    toggle_num: int  # toggles the EVSE counted
    result: int  # 0 not ready, 1 ready, 2 success, 3 failure, 4 not required


@_register
@dataclass(frozen=True, slots=True)
class CmSlacMatchReq(Mme):
    MMTYPE = 0x607C
    FORMAT = "BBH17s6s17s6s8s8s"
    SIZES = {"pev_id": 17, "pev_mac": 6, "evse_id": 17, "evse_mac": 6, "run_id": 8, "rsvd": 8}
    application_type: int
    security_type: int
    mvf_length: int
    pev_id: bytes
    pev_mac: bytes
    evse_id: bytes
    evse_mac: bytes
    run_id: bytes
    rsvd: bytes = bytes(8)


@_register
@dataclass(frozen=True, slots=True)
class CmSlacMatchCnf(Mme):
    MMTYPE = 0x607D
    FORMAT = "BBH17s6s17s6s8s8s7sB16s"
    SIZES = {
        "pev_id": 17,
        "pev_mac": 6,
        "evse_id": 17,
        "evse_mac": 6,
        "run_id": 8,
        "rsvd1": 8,
        "nid": 7,
        "nmk": 16,
    }
    application_type: int
    security_type: int
    mvf_length: int
    pev_id: bytes
    pev_mac: bytes
    evse_id: bytes
    evse_mac: bytes
    run_id: bytes
    rsvd1: bytes
    nid: bytes
    rsvd2: int
    nmk: bytes


# ------------------------------------------------------------------ Qualcomm vendor MMEs


@_register
@dataclass(frozen=True, slots=True)
class VsSwVerReq(Mme):
    MMTYPE = 0xA000
    VENDOR = True


@_register
@dataclass(frozen=True, slots=True)
class VsSwVerCnf(Mme):
    """The version text is Latin-1 both ways, so every byte the modem sends reads back and
    encodes to the same byte. It ends at the first NUL; QCA firmware sends a 64-byte field."""

    MMTYPE = 0xA001
    VENDOR = True
    status: int  # 0 = success
    device_class: int  # 0x22 = QCA7000 family
    version: str
    rest: bytes = field(default=b"", compare=False)

    def payload(self) -> bytes:
        try:
            text = self.version.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise MmeError(
                f"VsSwVerCnf.version must be Latin-1, got {self.version[exc.start]!r}"
            ) from None
        if b"\0" in text:
            raise MmeError("VsSwVerCnf.version must not contain NUL (it ends the text)")
        if len(text) > VERSION_MAX:
            raise MmeError(
                f"VsSwVerCnf.version must be at most {VERSION_MAX} bytes, got {len(text)}"
            )
        text = text.ljust(VERSION_FIELD, b"\0")  # a longer text fills its field, no NUL
        return bytes([self.status, self.device_class, len(text)]) + text + self.rest

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> Any:
        _need(cls, payload, 3, offset)
        status, device_class, length = payload[0], payload[1], payload[2]
        if len(payload) < 3 + length:
            raise MmeError(
                f"VsSwVerCnf at offset {offset + 2}: version length {length}, "
                f"{len(payload) - 3} bytes present"
            )
        text = payload[3 : 3 + length].split(b"\0", 1)[0].decode("latin-1")
        return cls(status, device_class, text, payload[3 + length :])


@_register
@dataclass(frozen=True, slots=True)
class VsPlLnkStatusReq(Mme):
    MMTYPE = 0xA0B8
    VENDOR = True


@_register
@dataclass(frozen=True, slots=True)
class VsPlLnkStatusCnf(Mme):
    MMTYPE = 0xA0B9
    VENDOR = True
    FORMAT = "BB"
    status: int  # 0 = success
    link: int  # 1 = member of an AVLN (powerline link up)


@_register
@dataclass(frozen=True, slots=True)
class VsRsDevReq(Mme):
    MMTYPE = 0xA01C
    VENDOR = True


@_register
@dataclass(frozen=True, slots=True)
class VsRsDevCnf(Mme):
    MMTYPE = 0xA01D
    VENDOR = True
    FORMAT = "B"
    status: int  # 0 = success, the modem resets


# ------------------------------------------------------------------ frames


@dataclass(frozen=True, slots=True)
class Frame:
    dst: bytes
    src: bytes
    mme: Mme


def _check_len(mme: Mme, name: str, size: int) -> None:
    value = getattr(mme, name)
    if len(value) != size:
        raise MmeError(f"{type(mme).__name__}.{name} must be {size} bytes, got {len(value)}")


def _need(cls: type[Mme], payload: bytes, size: int, offset: int) -> None:
    if len(payload) < size:
        raise MmeError(
            f"{cls.__name__} at offset {offset}: payload is {len(payload)} bytes, needs {size}"
        )


def encode_frame(dst: bytes, src: bytes, mme: Mme) -> bytes:
    if len(dst) != 6 or len(src) != 6:
        raise MmeError("MAC addresses must be 6 bytes")
    header = dst + src + struct.pack("!H", ETHERTYPE_HOMEPLUG)
    if mme.VENDOR:
        header += struct.pack("<BH", MMV_VENDOR, mme.MMTYPE) + QUALCOMM_OUI
    else:
        header += struct.pack("<BHBB", MMV_HPAV_1_1, mme.MMTYPE, 0, 0)
    frame = header + mme.payload()
    return frame.ljust(ETH_MIN_FRAME, b"\0")


def decode_frame(data: bytes) -> Frame:
    """Parses one Ethernet frame; raises MmeError saying what is wrong and at which offset."""
    if len(data) < ETH_HEADER + 3:
        raise MmeError(f"frame is {len(data)} bytes, shorter than an MME header (17)")
    (ethertype,) = struct.unpack_from("!H", data, 12)
    if ethertype != ETHERTYPE_HOMEPLUG:
        raise MmeError(f"offset 12: ethertype 0x{ethertype:04X} is not HomePlug AV (0x88E1)")
    mmv, mmtype = struct.unpack_from("<BH", data, ETH_HEADER)
    vendor = mmv == MMV_VENDOR and 0xA000 <= mmtype <= 0xBFFF
    if vendor:
        start = ETH_HEADER + VENDOR_HEADER
        if len(data) < start or data[17:20] != QUALCOMM_OUI:
            raise MmeError(f"offset 17: vendor MME 0x{mmtype:04X} without the Qualcomm OUI")
    else:
        if mmv not in (0x00, MMV_HPAV_1_1):
            raise MmeError(f"offset 14: MMV 0x{mmv:02X} is not HomePlug AV 1.0/1.1")
        start = ETH_HEADER + HPAV_HEADER
        if len(data) < start:
            raise MmeError(f"frame is {len(data)} bytes, shorter than the HomePlug AV header")
        if mmv == MMV_HPAV_1_1 and data[17] != 0:
            raise MmeError(f"offset 17: fragmented MME (FMSN {data[17]}) is not supported")
    cls = _REGISTRY.get((vendor, mmtype))
    if cls is None:
        raise MmeError(f"offset 15: MMTYPE 0x{mmtype:04X} is not a message this station uses")
    return Frame(data[0:6], data[6:12], cls.parse(data[start:], start))


def is_group(mac: bytes) -> bool:
    """A broadcast or multicast address (the I/G bit, the low bit of the first octet, set):
    never the source of a real station's frame."""
    return bool(mac[0] & 0x01)


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"{text!r} is not a MAC address (expected 6 hex bytes with ':')")
    return bytes(int(p, 16) for p in parts)
