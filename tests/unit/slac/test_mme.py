"""The MME codec against frames captured from Qualcomm's reference `evse` and `pev`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charger.protocols.slac import mme
from charger.protocols.slac.keys import nid_from_nmk
from charger.protocols.slac.mme import MmeError, decode_frame, encode_frame

HARNESS = Path(__file__).resolve().parents[4] / "shared" / "slac-harness"


def reference_frames() -> list[bytes]:
    spec = importlib.util.spec_from_file_location("slac_decode", HARNESS / "slac_decode.py")
    if spec is None or spec.loader is None:
        pytest.skip("shared/slac-harness is not beside the checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frames: list[bytes] = []
    for name in ("evse-side.pcapng", "pev-side.pcapng", "slac_match_ref.pcapng"):
        frames += [bytes(f) for _, f in module.read_frames(str(HARNESS / "reference" / name))]
    return frames


def test_every_reference_frame_decodes_and_reencodes_to_the_same_bytes() -> None:
    frames = reference_frames()
    assert len(frames) > 40
    seen = set()
    for raw in frames:
        frame = decode_frame(raw)
        seen.add(type(frame.mme).__name__)
        again = encode_frame(frame.dst, frame.src, frame.mme)
        if isinstance(frame.mme, mme.CmMnbcSoundInd) and len(raw) == 64:
            # plc-utils 1ba7d5a0 sends the pre-spec 64-byte layout; ours is the spec's 71
            assert again[:47] == raw[:47] and len(again) == 71
            continue
        # plc-utils pads ATTEN_CHAR.IND to its AAG[255] struct: the rest must be zeros
        assert again == raw[: len(again)] and raw[len(again) :] == bytes(len(raw) - len(again))
    assert seen >= {
        "CmSetKeyReq",
        "CmSetKeyCnf",
        "CmSlacParmReq",
        "CmSlacParmCnf",
        "CmStartAttenCharInd",
        "CmMnbcSoundInd",
        "CmAttenProfileInd",
        "CmAttenCharInd",
        "CmAttenCharRsp",
        "CmSlacMatchReq",
        "CmSlacMatchCnf",
    }


def test_reference_match_cnf_fields() -> None:
    cnf = next(
        decode_frame(f).mme for f in reference_frames() if decode_frame(f).mme.MMTYPE == 0x607D
    )
    assert isinstance(cnf, mme.CmSlacMatchCnf)
    assert cnf.mvf_length == mme.MVF_LENGTH_MATCH_CNF
    assert cnf.nmk.hex() == "b59319d7e8157ba001b018669ccee30d"
    assert cnf.nid == nid_from_nmk(cnf.nmk) == bytes.fromhex("026bcba5354e08")
    assert cnf.run_id == bytes.fromhex("02000000aa010001")


def test_frames_are_padded_to_60_bytes() -> None:
    req = mme.CmSlacParmReq(0, 0, bytes(range(8)))
    raw = encode_frame(mme.BROADCAST, bytes(6), req)
    assert len(raw) == 60 and raw[12:14] == b"\x88\xe1" and raw[14:17] == b"\x01\x64\x60"
    assert decode_frame(raw).mme == req


def test_vendor_messages_round_trip() -> None:
    for message in (
        mme.VsSwVerReq(),
        mme.VsSwVerCnf(0, 0x22, "QCA7000-MAC-1.2.3"),
        mme.VsPlLnkStatusReq(),
        mme.VsPlLnkStatusCnf(0, 1),
        mme.VsRsDevReq(),
        mme.VsRsDevCnf(0),
    ):
        raw = encode_frame(mme.LOCAL_MODEM, bytes(6), message)
        assert raw[14] == 0 and raw[17:20] == mme.QUALCOMM_OUI
        assert decode_frame(raw).mme == message


def test_security_and_amp_map_variants_round_trip() -> None:
    for message in (
        mme.CmSlacParmReq(0, 1, bytes(8), (0x0001, 0x0002)),
        mme.CmSlacParmCnf(mme.BROADCAST, 10, 6, 1, bytes(6), 0, 1, bytes(8), 0x0001),
        mme.CmAmpMapReq(5, b"\x12\x34\x05"),
        mme.CmAmpMapCnf(0),
        mme.CmValidateReq(0, 0, 1),
        mme.CmValidateCnf(0, 3, 2),
    ):
        assert decode_frame(encode_frame(bytes(6), bytes(6), message)).mme == message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00" * 10, "frame is 10 bytes, shorter than an MME header"),
        (bytes(12) + b"\x08\x00" + bytes(46), "offset 12: ethertype 0x0800 is not HomePlug AV"),
        (
            bytes(12) + b"\x88\xe1\x01\x34\x12\x00\x00" + bytes(41),
            "offset 15: MMTYPE 0x1234 is not a message this station uses",
        ),
        (bytes(12) + b"\x88\xe1\x07\x64\x60\x00\x00" + bytes(41), "offset 14: MMV 0x07"),
        (bytes(12) + b"\x88\xe1\x01\x64\x60\x01\x00" + bytes(41), "fragmented MME"),
        (
            bytes(12) + b"\x88\xe1\x01\x64\x60\x00\x00" + bytes(5),
            "CmSlacParmReq at offset 19: payload is 5 bytes, needs 10",
        ),
        (
            bytes(12) + b"\x88\xe1\x01\x86\x60\x00\x00" + bytes(6) + b"\x3a\x00" + bytes(10),
            "CmAttenProfileInd at offset 25: NumGroups 58 but 10 AAG bytes present",
        ),
        (bytes(12) + b"\x88\xe1\x00\x00\xa0\x00\x00\x00", "without the Qualcomm OUI"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MmeError) as info:
        decode_frame(raw)
    assert reason in str(info.value)


def test_encoding_checks_field_sizes() -> None:
    with pytest.raises(MmeError, match=r"CmSlacMatchCnf\.nmk must be 16 bytes, got 3"):
        encode_frame(
            bytes(6),
            bytes(6),
            mme.CmSlacMatchCnf(
                0,
                0,
                0x56,
                bytes(17),
                bytes(6),
                bytes(17),
                bytes(6),
                bytes(8),
                bytes(8),
                bytes(7),
                0,
                b"abc",
            ),
        )


def test_nid_derivation_matches_the_plc_utils_profiles() -> None:
    assert nid_from_nmk(bytes.fromhex("50D3E4933F855B7040784DF815AA8DB7")).hex() == "b0f2e695666b03"


MODEM = bytes.fromhex("00b052eeee01")
HOST = bytes.fromhex("0200000000ee")


def sw_ver_frame(version: bytes, rest: bytes = b"") -> bytes:
    """A VS_SW_VER.CNF as a QCA7000 sends it (text NUL-padded to 64 bytes)."""
    header = HOST + MODEM + b"\x88\xe1\x00\x01\xa0" + mme.QUALCOMM_OUI
    text = version.ljust(64, b"\0")
    return (header + bytes([0, 0x22, len(text)]) + text + rest).ljust(60, b"\0")


def test_a_non_ascii_byte_in_the_sw_version_round_trips() -> None:
    raw = sw_ver_frame(b"MAC-QCA7000-1.1.0-\xe9", b"\x00\xdc\x58\x1b\x00" + bytes(28))
    cnf = decode_frame(raw).mme
    assert isinstance(cnf, mme.VsSwVerCnf) and cnf.version == "MAC-QCA7000-1.1.0-\u00e9"
    assert encode_frame(HOST, MODEM, cnf) == raw


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("QCA\u20ac", "must be Latin-1, got '\u20ac'"),
        ("QCA\0x", "must not contain NUL"),
        ("x" * 256, "at most 255 bytes, got 256"),
    ],
)
def test_a_sw_version_that_cannot_be_sent_is_refused(version: str, reason: str) -> None:
    with pytest.raises(MmeError, match=reason):
        encode_frame(HOST, MODEM, mme.VsSwVerCnf(0, 0x22, version))


# Found by fuzzing the codec: every version byte must read back and encode the same.
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)


@PROPERTY
@given(version=st.binary(max_size=255).filter(lambda b: b"\0" not in b))
def test_sw_version_bytes_decode_and_encode_to_the_same_bytes(version: bytes) -> None:
    raw = sw_ver_frame(version)
    cnf = decode_frame(raw).mme
    assert isinstance(cnf, mme.VsSwVerCnf) and len(cnf.version) == len(version)
    assert encode_frame(HOST, MODEM, cnf) == raw


@PROPERTY
@given(
    version=st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=255),
    status=st.integers(0, 255),
    device_class=st.integers(0, 255),
)
def test_sw_version_text_encodes_and_decodes_to_the_same_text(
    version: str, status: int, device_class: int
) -> None:
    cnf = mme.VsSwVerCnf(status, device_class, version)
    assert decode_frame(encode_frame(HOST, MODEM, cnf)).mme == cnf
