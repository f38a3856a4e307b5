"""The firmware download over HTTP against a real server on 127.0.0.1: the whole file,
private and on disk before anyone reads it; a bound on size; a stalled server fails."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from charger.protocols.ocpp.firmware_download import DownloadFailed, DownloadLimits, download
from tests.support.firmware import file_server

DATA = bytes(range(256)) * 4096  # 1 MiB


async def test_the_file_arrives_whole_and_private(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "fw.raucb").write_bytes(DATA)
    target = tmp_path / "dl" / "firmware.bin"
    target.parent.mkdir()
    with file_server(tmp_path / "www") as server:
        size = await download(server.url("fw.raucb"), target, DownloadLimits())
    assert size == len(DATA)
    assert target.read_bytes() == DATA
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (target.parent / "firmware.bin.part").exists()


async def test_the_loop_keeps_running_during_a_download(tmp_path: Path) -> None:
    (tmp_path / "fw.bin").write_bytes(DATA[: 64 * 1024])
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    with file_server(tmp_path) as server:
        server.trickle_s = 0.005  # 64 chunks of 1 KiB: about 0.3 s
        ticker = asyncio.create_task(tick())
        await download(server.url("fw.bin"), tmp_path / "out.bin", DownloadLimits())
        ticker.cancel()
    assert ticks >= 10


@pytest.mark.parametrize(
    ("name", "limits", "server_setup", "reason"),
    [
        ("missing.bin", DownloadLimits(), {}, "HTTP 404"),
        ("fw.bin", DownloadLimits(max_bytes=1000), {}, "more than 1000"),
        ("fw.bin", DownloadLimits(), {"fail_first": 1}, "HTTP 503"),
        ("fw.bin", DownloadLimits(read_timeout_s=0.3), {"stall": True}, "Timeout"),
    ],
    ids=["not-found", "too-big", "server-error", "stalled"],
)
async def test_a_failed_download_says_why_and_leaves_nothing(
    tmp_path: Path,
    name: str,
    limits: DownloadLimits,
    server_setup: dict[str, object],
    reason: str,
) -> None:
    (tmp_path / "fw.bin").write_bytes(DATA)
    target = tmp_path / "out" / "firmware.bin"
    target.parent.mkdir()
    with file_server(tmp_path) as server:
        for key, value in server_setup.items():
            setattr(server, key, value)
        with pytest.raises(DownloadFailed, match=reason):
            await download(server.url(name), target, limits)
    assert list(target.parent.iterdir()) == []


async def test_only_http_and_https_are_fetched(tmp_path: Path) -> None:
    for url in ("ftp://127.0.0.1/fw.bin", "file:///etc/passwd", "fw.bin"):
        with pytest.raises(DownloadFailed, match="only HTTP and HTTPS"):
            await download(url, tmp_path / "out.bin", DownloadLimits())


async def test_a_refused_connection_fails(tmp_path: Path) -> None:
    with file_server(tmp_path) as server:
        url = server.url("fw.bin")
    with pytest.raises(DownloadFailed, match="Connect"):
        await download(url, tmp_path / "out.bin", DownloadLimits(connect_timeout_s=2))
