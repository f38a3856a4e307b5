"""Firmware updates from the CSMS (OCPP 2.0.1 L01 secure, L02 non-secure) through an A/B
installer (`charger.hal.firmware.FirmwareInstaller`: RAUC, or the simulated one).

One update at a time, reported with FirmwareStatusNotification at every step, each
carrying the request's requestId (L01.FR.01, .10, .20):

    [DownloadScheduled] -> Downloading -> Downloaded -> SignatureVerified
    -> [InstallScheduled] -> Installing -> InstallRebooting
    -- reboot into the new slot, BootNotification reason FirmwareUpdate --
    -> Installed (+ security event FirmwareUpdated)

- UpdateFirmware: the signing certificate is checked before the answer (InvalidCertificate
  and the security event InvalidFirmwareSigningCertificate, L01.FR.21/22); a request with
  neither certificate nor signature is Rejected unless `allow_unsigned` (TC_L_18, L02).
  A new request cancels one that has not begun installing (AcceptedCanceled, L01.FR.24);
  once installing it is Rejected (L01.FR.27: RAUC cannot be stopped half-way).
- The download waits for retrieveDateTime (DownloadScheduled, L01.FR.13) and is tried
  1 + retries times, retryInterval apart (DownloadFailed after the last, L01.FR.30).
- The signature over the whole file is checked (InvalidSignature and the security event
  InvalidFirmwareSignature, L01.FR.03/04).
- Installation waits for installDateTime (InstallScheduled, L01.FR.16) and for every
  transaction to end (L01.FR.06, InstallScheduled per L01.FR.34); meanwhile, unless
  ChargingStation.AllowNewSessionsPendingFirmwareUpdate is true, every EVSE not in use
  is made Unavailable and each that becomes free too (L01.FR.07). From Installing until
  the new firmware has proven itself no EVSE takes a driver.
- The installer writes the inactive slot; InstallRebooting is sent before the reboot
  (L01.FR.15/.32 a), which also waits for transactions (L01.FR.33).
- After the reboot the new firmware checks itself once the CSMS has accepted its boot:
  the health check the app gives (HAL self-test, bus up) passes, the slot is marked good
  and Installed + FirmwareUpdated go out (L01.FR.28/31). Otherwise (the check fails, or
  the CSMS does not accept the boot within `health_timeout_s`) the slot is marked bad
  and the station reboots into the old firmware, which reports InstallationFailed. A
  slot the bootloader gave up on (the new firmware never came up) is reported the same.

What must survive the reboot (the request, the last status, the slot installed, the
EVSEs held) is kept in the OCPP state store. Security events go through the durable
outbox; status notifications are sent at once when online, else when the station is
next registered. TriggerMessage FirmwareStatusNotification answers the last status sent,
Idle after Installed or when there was none (L01.FR.25/26).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from charger.bus import Bus, RequestTimeout, messages
from charger.hal.firmware import FirmwareInstaller, InstallFailed
from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.firmware_download import DownloadFailed, DownloadLimits, download
from charger.protocols.ocpp.firmware_signature import (
    CertificateProblem,
    SignatureProblem,
    check_signing_certificate,
    verify_signature,
)
from charger.protocols.ocpp.session import Session
from charger.runtime.log import event
from charger.runtime.store import Store, private_directory
from charger.runtime.tasks import TaskOwner, wait_event

log = logging.getLogger(__name__)

STATE_KEY = "ocpp_firmware"
UNSENT_LIMIT = 32  # status notifications kept while offline
# A status of an update that a restart interrupted, and what the CSMS then hears
_INTERRUPTED = {
    "DownloadScheduled": "DownloadFailed",
    "Downloading": "DownloadFailed",
    "DownloadPaused": "DownloadFailed",
}

# a health check: None when the new firmware works, else what is wrong
HealthCheck = Callable[[], Awaitable[str | None]]
SecurityEvent = Callable[[str, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class FirmwareOptions:
    """What the app configures (`[firmware]`, docs/firmware-update.md)."""

    directory: Path | None = None  # where downloads go (None: nowhere, updates refused)
    roots: tuple[x509.Certificate, ...] = ()  # manufacturer roots
    allow_unsigned: bool = False
    limits: DownloadLimits = field(default_factory=DownloadLimits)
    retries: int = 3  # when the request has none
    retry_interval_s: float = 60.0  # when the request has none
    health_timeout_s: float = 600.0
    firmware_version: str = ""


class FirmwareStation(Protocol):
    """What the firmware service needs from the OCPP client."""

    def evses(self) -> list[int]: ...

    def evse_id(self, ocpp_evse_id: int) -> str | None: ...

    def transaction_id(self, ocpp_evse_id: int) -> str | None: ...

    def set_available(self, ocpp_evse_id: int, available: bool) -> None: ...

    def schedule_unavailable(self, ocpp_evse_ids: list[int]) -> None: ...

    def unschedule_unavailable(self, ocpp_evse_ids: list[int]) -> None: ...


@dataclass
class _Job:
    request_id: int
    location: str
    retrieve_at: datetime | None
    install_at: datetime | None
    retries: int
    retry_interval_s: float
    certificate: x509.Certificate | None  # None: a non-secure update (L02)
    signature: str


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class FirmwareService:
    def __init__(
        self,
        bus: Bus,
        station: FirmwareStation,
        dm: DeviceModel,
        installer: FirmwareInstaller | None,
        options: FirmwareOptions,
        tasks: TaskOwner,
        *,
        session: Callable[[], Session | None],
        now: Callable[[], datetime],
        security_event: SecurityEvent,
        health: HealthCheck | None = None,
        store: Store | None = None,
        call_timeout_s: float = 30.0,
    ) -> None:
        """`session`: the registered session (None while offline); `now`: the CSMS's
        time, UTC; `security_event`: commits one to the durable outbox."""
        self._bus = bus
        self._station = station
        self._dm = dm
        self._installer = installer
        self._o = options
        self._tasks = tasks
        self._session = session
        self._now = now
        self._security_event = security_event
        self._health = health
        self._store = store
        self._timeout_s = call_timeout_s
        self._job: _Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._request_id: int | None = None  # of the update the last status belongs to
        self._last: str | None = None  # the last status sent (or to be sent)
        # "idle"; "busy" (downloading .. waiting to install); "installing"; "activating"
        # (rebooting into the new slot, until it is judged); "rolling_back"
        self._phase = "idle"
        self._target: str | None = None  # the slot installed to
        self._held: set[int] = set()  # EVSEs this update made Unavailable
        self._scheduled: set[int] = set()  # EVSEs to make Unavailable when their tx ends
        self._unsent: list[dict[str, Any]] = []
        self._tx_ended = asyncio.Event()
        self._accepted = asyncio.Event()  # the CSMS accepted this start's boot
        self._judged = False  # the boot after an update has been dealt with
        self._lock = asyncio.Lock()  # one change of phase at a time
        self._flushing = asyncio.Lock()  # one sender of the queued statuses
        dm.assign("FirmwareCtrlr", "FirmwareVersion", options.firmware_version)
        dm.assign("FirmwareCtrlr", "State", "Idle")

    # ------------------------------------------------------------------ the client's hooks

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        return {"UpdateFirmware": self.update_firmware}

    @property
    def rebooted_for_update(self) -> bool:
        """This start is the reboot of an update (BootNotification reason FirmwareUpdate)."""
        return self._phase in ("activating", "rolling_back")

    async def restore(self) -> None:
        """At start, before the first connection: picks up an update the restart
        interrupted or completed."""
        if self._installer is not None:
            with contextlib.suppress(Exception):  # only informative
                self._dm.assign("FirmwareCtrlr", "BootSlot", await self._installer.booted())
        saved = await self._store.get(STATE_KEY) if self._store is not None else None
        if not isinstance(saved, dict):
            return
        self._request_id = saved.get("request_id")
        self._last = saved.get("status")
        self._phase = str(saved.get("phase") or "idle")
        self._target = saved.get("target")
        self._held = {int(e) for e in saved.get("held", [])}
        if self._last is not None:
            self._dm.assign("FirmwareCtrlr", "State", self._last)
        if self._phase == "activating":
            event(log, logging.INFO, "firmware_booted_for_check", target=self._target)
            self._tasks.spawn(self._deadline(), "firmware health deadline")
        elif self._phase == "busy" or self._phase == "installing":
            # a power cut or a crash in the middle: that update is over
            failed = _INTERRUPTED.get(self._last or "", "InstallationFailed")
            event(log, logging.WARNING, "firmware_update_interrupted", status=self._last)
            await self._release()
            self._phase = "idle"
            await self._status(failed)

    def registered(self) -> None:
        """The CSMS accepted the boot (or a reconnect resumed it): queued statuses go
        out, and the first time after an update the new firmware is judged."""
        self._accepted.set()
        self._tasks.spawn(self._on_registered(), "firmware after boot")

    def transaction_ended(self) -> None:
        self._tx_ended.set()

    def trigger(self, session: Session) -> None:
        """F06 / L01.FR.25, .26: the last status sent; Idle after Installed or none."""
        status = self._last if self._last not in (None, "Installed") else "Idle"
        payload: dict[str, Any] = {"status": status}
        if status != "Idle" and self._request_id is not None:
            payload["requestId"] = self._request_id
        self._tasks.spawn(
            session.call_quietly("FirmwareStatusNotification", payload), "triggered status"
        )

    # ------------------------------------------------------------------ UpdateFirmware

    async def update_firmware(self, payload: dict[str, Any]) -> dict[str, Any]:
        firmware, request_id = payload["firmware"], payload["requestId"]
        if self._installer is None or self._o.directory is None:
            return _refused("Rejected", "NoInstaller", "this station cannot install firmware")
        if self._phase in ("installing", "activating", "rolling_back"):
            # L01.FR.27: RAUC cannot be stopped half-way, nor a reboot into it undone
            return _refused("Rejected", "InstallInProgress", "an installation is under way")
        pem, signature = firmware.get("signingCertificate"), firmware.get("signature")
        certificate = None
        if pem is None and signature is None:
            if not self._o.allow_unsigned:  # TC_L_18: secure updates only
                return _refused("Rejected", "UnsignedFirmware", "no signing certificate")
        else:
            try:
                certificate = check_signing_certificate(pem or "", self._o.roots, self._now())
            except CertificateProblem as exc:
                event(log, logging.WARNING, "firmware_certificate_refused", reason=str(exc))
                self._tasks.spawn(  # after the answer (L01.FR.02)
                    self._security_event("InvalidFirmwareSigningCertificate", str(exc)),
                    "security event",
                )
                return _refused("InvalidCertificate", "InvalidCertificate", str(exc))
        job = _Job(
            request_id=request_id,
            location=firmware["location"],
            retrieve_at=_time(firmware["retrieveDateTime"]),
            install_at=_time(firmware.get("installDateTime")),
            retries=payload.get("retries", self._o.retries),
            retry_interval_s=float(payload.get("retryInterval", self._o.retry_interval_s)),
            certificate=certificate,
            signature=signature or "",
        )
        cancelled = await self._cancel()
        event(
            log,
            logging.INFO,
            "firmware_update",
            request_id=request_id,
            location=job.location,
            secure=certificate is not None,
            cancelled_previous=cancelled,
        )
        self._job, self._request_id, self._phase = job, request_id, "busy"
        self._last = None
        await self._save()
        self._task = self._tasks.spawn(self._run(job), f"firmware update {request_id}")
        return {"status": "AcceptedCanceled" if cancelled else "Accepted"}

    async def _cancel(self) -> bool:
        """L01.FR.24: stops the update that has not begun installing; True if one ran."""
        task, self._task = self._task, None
        if task is None or task.done():
            return False
        task.cancel()
        await asyncio.wait({task})
        event(log, logging.INFO, "firmware_update_cancelled", request_id=self._request_id)
        await self._release()
        return True

    # ------------------------------------------------------------------ the update

    async def _run(self, job: _Job) -> None:
        await asyncio.sleep(0)  # the UpdateFirmwareResponse goes out first
        assert self._o.directory is not None and self._installer is not None
        path = self._o.directory / f"firmware-{job.request_id}.bin"
        try:
            if not await self._fetch(job, path):
                return await self._finish()
            if job.certificate is not None:
                try:
                    await asyncio.to_thread(verify_signature, path, job.signature, job.certificate)
                except SignatureProblem as exc:
                    event(log, logging.WARNING, "firmware_signature_refused", reason=str(exc))
                    await self._status("InvalidSignature")
                    await self._security_event("InvalidFirmwareSignature", str(exc))
                    return await self._finish()
                await self._status("SignatureVerified")
            await self._wait_to_install(job)
            target = await self._install(path)
            if target is None:
                return await self._finish()
        finally:
            await asyncio.shield(asyncio.to_thread(_remove, path))
        await self._reboot_into(target)

    async def _fetch(self, job: _Job, path: Path) -> bool:
        assert self._o.directory is not None
        if job.retrieve_at is not None and job.retrieve_at > self._now():
            await self._status("DownloadScheduled")
            await asyncio.sleep((job.retrieve_at - self._now()).total_seconds())
        await self._status("Downloading")
        await asyncio.to_thread(private_directory, self._o.directory)
        attempts = 1 + max(0, job.retries)
        for attempt in range(1, attempts + 1):
            try:
                size = await download(job.location, path, self._o.limits)
            except DownloadFailed as exc:
                event(
                    log,
                    logging.WARNING,
                    "firmware_download_failed",
                    attempt=attempt,
                    attempts=attempts,
                    error=str(exc),
                )
                if attempt == attempts:
                    await self._status("DownloadFailed")
                    return False
                await asyncio.sleep(job.retry_interval_s)
            else:
                event(log, logging.INFO, "firmware_downloaded", bytes=size, attempt=attempt)
                break
        await self._status("Downloaded")
        return True

    async def _wait_to_install(self, job: _Job) -> None:
        scheduled = False
        if job.install_at is not None and job.install_at > self._now():
            await self._status("InstallScheduled")  # L01.FR.16
            scheduled = True
            await asyncio.sleep((job.install_at - self._now()).total_seconds())
        while self._busy():  # L01.FR.06
            if not scheduled:
                await self._status("InstallScheduled")  # L01.FR.34
                scheduled = True
            if self._dm.value("ChargingStation", "AllowNewSessionsPendingFirmwareUpdate") != (
                "true"
            ):
                await self._hold(self._station.evses())  # L01.FR.07
            self._tx_ended.clear()
            if self._busy():
                await self._tx_ended.wait()

    async def _install(self, path: Path) -> str | None:
        """Installing: the slot written, or None (reported) when it failed."""
        assert self._installer is not None
        await self._hold(self._station.evses())  # nobody starts charging from here on
        async with self._lock:
            self._phase = "installing"
            await self._status("Installing")
        try:
            target = await self._installer.install(path, self._progress)
        except InstallFailed as exc:
            event(
                log,
                logging.ERROR,
                "firmware_install_failed",
                reason=exc.reason,
                verification=exc.verification,
            )
            await self._release()
            async with self._lock:
                self._phase = "busy"
            await self._status(
                "InstallVerificationFailed" if exc.verification else "InstallationFailed"
            )
            return None
        event(log, logging.INFO, "firmware_installed", slot=target)
        return target

    def _progress(self, percent: int, message: str) -> None:
        event(log, logging.INFO, "firmware_install_progress", percent=percent, step=message)

    async def _reboot_into(self, target: str) -> None:
        assert self._installer is not None
        await self._until_idle()  # L01.FR.33
        async with self._lock:
            self._phase, self._target = "activating", target
            await self._status("InstallRebooting")  # L01.FR.15, .32 (a)
        event(log, logging.WARNING, "firmware_reboot", slot=target)
        await self._installer.reboot()

    async def _finish(self) -> None:
        """The update ended without a new firmware: the EVSEs take drivers again."""
        await self._release()
        async with self._lock:
            self._phase, self._job = "idle", None
            await self._save()

    # ------------------------------------------------------------------ after the reboot

    async def _on_registered(self) -> None:
        await self._flush()
        if self._judged or self._installer is None:
            return
        self._judged = True
        async with self._lock:
            phase = self._phase
        if phase == "activating":
            await self._judge()
        elif phase == "rolling_back":
            await self._rolled_back("the new firmware failed its check")

    async def _judge(self) -> None:
        """The new firmware's first registered boot: keep it or go back."""
        assert self._installer is not None
        booted = await self._installer.booted()
        if booted != self._target:
            await self._rolled_back(f"the bootloader went back to slot {booted}")
            return
        problem = await self._check_health()
        if problem is not None:
            await self._roll_back(problem)
            return
        async with self._lock:
            if self._phase != "activating":
                return  # the deadline came first
            await self._installer.mark_good()
            self._phase = "idle"
            await self._status("Installed")  # by the new firmware (L01.FR.32 a)
        event(log, logging.INFO, "firmware_update_done", slot=booted)
        await self._security_event(
            "FirmwareUpdated", f"version {self._o.firmware_version} in slot {booted}"
        )
        await self._release()

    async def _check_health(self) -> str | None:
        if self._health is None:
            return None
        try:
            async with asyncio.timeout(self._o.health_timeout_s):
                return await self._health()
        except TimeoutError:
            return f"the health check took longer than {self._o.health_timeout_s:g} s"
        except Exception as exc:  # a check that crashes is a failed check
            return f"the health check failed: {exc!r}"

    async def _deadline(self) -> None:
        if await wait_event(self._accepted, self._o.health_timeout_s):
            return
        await self._roll_back(
            f"the CSMS did not accept the boot within {self._o.health_timeout_s:g} s"
        )

    async def _roll_back(self, reason: str) -> None:
        """The new firmware is bad: mark its slot so and boot the old one."""
        assert self._installer is not None
        async with self._lock:
            if self._phase != "activating":
                return
            self._phase = "rolling_back"
            await self._save()
        event(log, logging.ERROR, "firmware_rollback", reason=reason, slot=self._target)
        await self._installer.mark_bad()
        await self._until_idle()
        await self._installer.reboot()

    async def _rolled_back(self, reason: str) -> None:
        """The old firmware runs again after an update: it stays, and the CSMS hears."""
        assert self._installer is not None
        event(log, logging.ERROR, "firmware_update_failed", reason=reason)
        await self._installer.mark_good()
        async with self._lock:
            self._phase = "idle"
            await self._status("InstallationFailed")
        await self._release()

    # ------------------------------------------------------------------ EVSEs

    def _busy(self) -> bool:
        return any(self._station.transaction_id(e) is not None for e in self._station.evses())

    async def _until_idle(self) -> None:
        while self._busy():
            await self._hold(self._station.evses())
            self._tx_ended.clear()
            if self._busy():
                await self._tx_ended.wait()

    async def _hold(self, evses: list[int]) -> None:
        """Makes the EVSEs Unavailable (the CS too): at once the free ones, and the busy
        ones as soon as their transaction ends."""
        changed = False
        for evse in evses:
            if evse in self._held:
                continue
            if self._station.transaction_id(evse) is not None:
                if evse not in self._scheduled:
                    self._station.schedule_unavailable([evse])
                    self._scheduled.add(evse)
                continue
            if evse in self._scheduled:
                self._station.unschedule_unavailable([evse])
                self._scheduled.discard(evse)
            await self._cs_availability(evse, operative=False)
            self._station.set_available(evse, False)
            self._held.add(evse)
            changed = True
        if changed:
            event(log, logging.INFO, "firmware_evses_held", evses=sorted(self._held))
            await self._save()

    async def _release(self) -> None:
        if self._scheduled:
            self._station.unschedule_unavailable(sorted(self._scheduled))
            self._scheduled.clear()
        if not self._held:
            return
        held, self._held = sorted(self._held), set()
        for evse in held:
            await self._cs_availability(evse, operative=True)
            self._station.set_available(evse, True)
        event(log, logging.INFO, "firmware_evses_released", evses=held)
        await self._save()

    async def _cs_availability(self, evse: int, *, operative: bool) -> None:
        evse_id = self._station.evse_id(evse)
        if evse_id is None:
            return
        request = messages.CHANGE_AVAILABILITY_REQUEST.make(
            {"evse_id": evse_id, "operational_status": "operative" if operative else "inoperative"}
        )
        try:
            await self._bus.request(request, self._timeout_s)
        except (RequestTimeout, TimeoutError):
            event(log, logging.WARNING, "firmware_cs_availability_unanswered", evse=evse)

    # ------------------------------------------------------------------ notifications

    async def _status(self, status: str) -> None:
        """Enters `status`: kept, on disk, and told to the CSMS (L01.FR.01)."""
        self._last = status
        self._dm.assign("FirmwareCtrlr", "State", status)
        event(log, logging.INFO, "firmware_status", status=status, request_id=self._request_id)
        await self._save()
        payload: dict[str, Any] = {"status": status}
        if self._request_id is not None:
            payload["requestId"] = self._request_id
        self._unsent.append(payload)
        del self._unsent[:-UNSENT_LIMIT]
        await self._flush()

    async def _flush(self) -> None:
        """Sends the statuses not yet sent, in order, while registered."""
        async with self._flushing:
            await self._send_unsent()

    async def _send_unsent(self) -> None:
        while self._unsent:
            session = self._session()
            if session is None:
                return
            try:
                await session.call("FirmwareStatusNotification", self._unsent[0])
            except Exception as exc:  # a lost link (ConnectionClosed) or no answer
                event(log, logging.WARNING, "firmware_status_not_sent", error=repr(exc))
                if self._session() is not None:
                    self._unsent.pop(0)  # answered with an error: it will not do better
                    continue
                return
            if self._unsent:
                self._unsent.pop(0)

    async def _save(self) -> None:
        if self._store is None:
            return
        await self._store.put(
            STATE_KEY,
            {
                "request_id": self._request_id,
                "status": self._last,
                "phase": self._phase,
                "target": self._target,
                "held": sorted(self._held),
            },
        )


def _refused(status: str, code: str, info: str) -> dict[str, Any]:
    return {"status": status, "statusInfo": {"reasonCode": code, "additionalInfo": info[:512]}}


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".part")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
