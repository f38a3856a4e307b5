"""The PN532 card reader driver against its protocol twin on a pseudo-terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from charger.hal.rpi import rfid
from charger.hal.rpi.rfid import Pn532, Pn532Error, Pn532Reader, command_frame, parse_frame
from tests.support.pn532 import Pn532Twin
from tests.support.polling import eventually


@pytest.fixture
def twin() -> Iterator[Pn532Twin]:
    twin = Pn532Twin()
    yield twin
    twin.close()


def test_frames() -> None:
    raw = command_frame(0x4A, bytes((0x01, 0x00)))
    assert raw == bytes.fromhex("0000ff04fcd44a0100e100")
    assert parse_frame(raw) == bytes((0xD4, 0x4A, 0x01, 0x00))
    with pytest.raises(Pn532Error, match="data checksum"):
        parse_frame(raw[:-2] + b"\x00\x00")
    with pytest.raises(Pn532Error, match="length checksum"):
        parse_frame(bytes.fromhex("0000ff04fdd44a0100e100"))


def test_card_uid_over_the_serial_port(twin: Pn532Twin) -> None:
    port = rfid.open_serial(twin.path)()
    try:
        pn532 = Pn532(port)
        pn532.setup()
        assert twin.commands == [0x14, 0x32]
        assert pn532.read_uid() is None
        twin.card = bytes.fromhex("04A1B2C3D4E5F6")
        assert pn532.read_uid() == bytes.fromhex("04A1B2C3D4E5F6")
        twin.corrupt_next = True
        with pytest.raises(Pn532Error, match="checksum"):
            pn532.read_uid()
    finally:
        port.close()


def test_a_card_counts_once_while_it_stays(twin: Pn532Twin) -> None:
    port = rfid.open_serial(twin.path)()
    reader = Pn532Reader(lambda: port, twin.path)
    pn532 = Pn532(port)
    try:
        pn532.setup()
        twin.card = bytes.fromhex("DEADBEEF")
        assert reader.poll(pn532) == "DEADBEEF"
        assert reader.poll(pn532) is None  # still there
        twin.card = None
        assert reader.poll(pn532) is None
        assert reader.poll(pn532) is None
        twin.card = bytes.fromhex("DEADBEEF")
        assert reader.poll(pn532) == "DEADBEEF"  # taken away and presented again
    finally:
        port.close()


async def test_reader_thread_reports_tokens_in_the_loop(
    twin: Pn532Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rfid, "POLL_S", 0.02)
    reader = Pn532Reader(rfid.open_serial(twin.path), twin.path)
    tokens: list[tuple[str, str]] = []
    reader.on_token(lambda token, kind: tokens.append((token, kind)))
    reader.start(asyncio.get_running_loop())
    try:
        twin.card = bytes.fromhex("0A0B0C0D")
        await eventually(lambda: bool(tokens), 3)
    finally:
        await asyncio.to_thread(reader.stop)
    assert tokens == [("0A0B0C0D", "ISO14443")]


async def test_a_silent_reader_is_logged_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(rfid, "RETRY_S", 0.01)

    def missing() -> object:
        raise FileNotFoundError(2, "No such file or directory", "/dev/ttyNOPE")

    reader = Pn532Reader(missing, "/dev/ttyNOPE")
    reader.start(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    await asyncio.to_thread(reader.stop)
    assert any("rfid_failed" in r.getMessage() for r in caplog.records)
