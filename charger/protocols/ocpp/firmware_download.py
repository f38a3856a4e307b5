"""Fetches a firmware file over HTTP(S) (OCPPCommCtrlr.FileTransferProtocols: HTTPS,
HTTP) with aiohttp: a connect and a read timeout (a stalled server fails the attempt),
a bound on the size, the file written 0600 and fsync'd before anyone checks it.

The file is written next to its final name (`.part`) and renamed when complete, so a
half-written download is never taken for a whole one. Disk writes run in a worker
thread; the loop only moves the chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHUNK_BYTES = 256 * 1024


class DownloadFailed(Exception):
    """The file could not be fetched; the message says why (for the log)."""


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    max_bytes: int = 1 << 30
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 60.0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _open_private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there already
    return fd


def _finish(fd: int, part: Path, final: Path) -> None:
    """fsync the file, give it its name, and fsync the directory that holds the name."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    part.replace(final)
    directory = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _discard(fd: int | None, part: Path) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        part.unlink()


async def download(url: str, destination: Path, limits: DownloadLimits) -> int:
    """Fetches `url` into `destination`; returns its size. Raises DownloadFailed."""
    import aiohttp  # only when a download happens: it costs 120 ms and MBs at start-up

    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadFailed(f"{scheme or 'no'} scheme: only HTTP and HTTPS are supported")
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=limits.connect_timeout_s,
        sock_connect=limits.connect_timeout_s,
        sock_read=limits.read_timeout_s,
    )
    part = destination.with_name(destination.name + ".part")
    fd: int | None = None
    size = 0
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, allow_redirects=True, max_redirects=5) as response,
        ):
            if response.status != 200:
                raise DownloadFailed(f"HTTP {response.status} {response.reason or ''}".strip())
            length = response.content_length
            if length is not None and length > limits.max_bytes:
                raise DownloadFailed(f"{length} bytes is more than {limits.max_bytes}")
            fd = await asyncio.to_thread(_open_private, part)
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise DownloadFailed(f"more than {limits.max_bytes} bytes")
                await asyncio.to_thread(_write_all, fd, chunk)
            if length is not None and size != length:
                raise DownloadFailed(f"{size} of {length} bytes arrived")
        assert fd is not None
        await asyncio.to_thread(_finish, fd, part, destination)
        fd = None
    except DownloadFailed:
        await asyncio.to_thread(_discard, fd, part)
        raise
    except (aiohttp.ClientError, TimeoutError) as exc:
        await asyncio.to_thread(_discard, fd, part)
        raise DownloadFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    except OSError as exc:
        await asyncio.to_thread(_discard, fd, part)
        raise DownloadFailed(f"{part.parent}: {exc.strerror or exc}") from None
    except asyncio.CancelledError:
        await asyncio.shield(asyncio.to_thread(_discard, fd, part))
        raise
    return size
