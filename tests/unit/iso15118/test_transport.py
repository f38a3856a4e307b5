"""V2GTP framing and the SDP coding, sans-IO."""

from __future__ import annotations

import ipaddress
import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charger.protocols.iso15118 import sdp, v2gtp
from charger.protocols.iso15118.v2gtp import FrameReader, PayloadType, V2gtpError


def frame(payload: bytes, ptype: int = PayloadType.EXI) -> bytes:
    return v2gtp.encode(ptype, payload)


@given(
    payloads=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_split_and_merged_segments_give_the_same_messages(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader(max_payload=1024)
    got = []
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        got += reader.feed(stream[start:end])
    assert [f.payload for f in got] == payloads
    assert reader.pending == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x02\xfd\x80\x01\x00\x00\x00\x01", "protocol version 0x02"),
        (b"\x01\xff\x80\x01\x00\x00\x00\x01", "inverse 0xFF"),
        (b"\x01\xfe\x90\x00\x00\x00\x00\x02", "payload type 0x9000 is not allowed"),
        (b"\x01\xfe\x12\x34\x00\x00\x00\x02", "payload type 0x1234"),
        (b"\x01\xfe\x80\x01\x00\x00\x10\x01", "4097 bytes exceeds the maximum of 4096"),
    ],
)
def test_a_wrong_header_is_refused_with_the_reason(header: bytes, reason: str) -> None:
    reader = FrameReader(max_payload=4096)
    with pytest.raises(V2gtpError, match=reason):
        reader.feed(header)
    with pytest.raises(V2gtpError):
        reader.feed(frame(b"ok"))  # nothing after a broken header is trusted


def test_a_wrong_header_after_good_messages_still_raises() -> None:
    reader = FrameReader(max_payload=64)
    assert [f.payload for f in reader.feed(frame(b"one"))] == [b"one"]
    with pytest.raises(V2gtpError):
        reader.feed(frame(b"two") + b"\x01\xfe\x80\x01\xff\xff\xff\xff")


def test_sdp_request_and_response() -> None:
    request = sdp.parse_request(frame(b"\x10\x00", PayloadType.SDP_REQUEST))
    assert request == sdp.SdpRequest(sdp.Security.NONE, sdp.Transport.TCP)
    data = sdp.response("fe80::ff:fe00:5e01%v2g-se", 50000, sdp.Security.TLS)
    assert data[:8] == b"\x01\xfe\x90\x01\x00\x00\x00\x14"
    assert ipaddress.IPv6Address(data[8:24]) == ipaddress.IPv6Address("fe80::ff:fe00:5e01")
    assert struct.unpack("!HBB", data[24:]) == (50000, 0x00, 0x00)
    with pytest.raises(ValueError, match="outside 49152-65535"):
        sdp.response("fe80::1", 41179, sdp.Security.NONE)


@pytest.mark.parametrize(
    "datagram",
    [
        frame(b"\x10\x00", PayloadType.EXI),  # wrong payload type
        frame(b"\x10", PayloadType.SDP_REQUEST),  # short payload
        frame(b"\x10\x00\x00", PayloadType.SDP_REQUEST),  # long payload
        frame(b"\x20\x00", PayloadType.SDP_REQUEST),  # unknown security
        frame(b"\x10\x00", PayloadType.SDP_REQUEST)[:-1],  # length mismatch
        b"\x01\xfe\x90",
    ],
)
def test_a_bad_sdp_request_is_refused(datagram: bytes) -> None:
    with pytest.raises(V2gtpError):
        sdp.parse_request(datagram)


@pytest.mark.parametrize(
    ("requested", "mode", "answered"),
    [
        (sdp.Security.TLS, "off", sdp.Security.NONE),
        (sdp.Security.NONE, "off", sdp.Security.NONE),
        (sdp.Security.TLS, "offer", sdp.Security.TLS),
        (sdp.Security.NONE, "offer", sdp.Security.NONE),
        (sdp.Security.NONE, "require", sdp.Security.TLS),
        (sdp.Security.TLS, "require", sdp.Security.TLS),
    ],
)
def test_the_answered_security_follows_the_configuration(
    requested: sdp.Security, mode: str, answered: sdp.Security
) -> None:
    assert sdp.choose_security(requested, mode) is answered
