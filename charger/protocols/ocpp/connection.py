"""The station's WebSocket link to the CSMS: which network connection profile to try
(B10), TLS for security profiles 2 and 3 (A00), HTTP Basic authentication (A01: a new
BasicAuthPassword makes the station connect again with it at once), the reconnect
schedule (B04, RetryBackOff*), SetNetworkProfile (B09) and the security-profile upgrade
(A05). What runs over a connection is the client's business: `run` hands every open
WebSocket to the `serve` coroutine it is given.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from charger.protocols.ocpp.device_model import DeviceModel
from charger.protocols.ocpp.network_profiles import NetworkProfile, NetworkProfiles
from charger.protocols.ocpp.settings import OcppSettings
from charger.protocols.ocpp.tls import security_event
from charger.runtime.log import event

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp2.0.1"
MIN_RETRY_WAIT_S = 0.05  # a RetryBackOffWaitMinimum of 0 must not become a busy loop
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    websockets.InvalidHandshake,
    websockets.ConnectionClosed,
)


def reconnect_delays(
    wait_minimum_s: float, random_range_s: float, repeat_times: int, rng: random.Random
) -> list[float]:
    """B04/B10: the wait doubles from RetryBackOffWaitMinimum for RetryBackOffRepeatTimes
    tries, then stays; each wait gets a random 0..RetryBackOffRandomRange added."""
    return [
        max(MIN_RETRY_WAIT_S, wait_minimum_s * 2 ** min(i, repeat_times))
        + rng.uniform(0, random_range_s)
        for i in range(repeat_times + 1)
    ]


class CsmsConnection:
    def __init__(
        self,
        settings: OcppSettings,
        dm: DeviceModel,
        networks: NetworkProfiles,
        security_event: Callable[[str, str], Awaitable[None]],
        *,
        rng: random.Random | None = None,
        connect: Callable[..., Any] = websockets.connect,
    ) -> None:
        self._s = settings
        self._dm = dm
        self.networks = networks
        # A04: keeps a security event (kind, techInfo) in the security log and queues its
        # notification when the CSMS hears of that kind (the client's)
        self._security_event = security_event
        self._rng = rng or random.Random()
        self._connect = connect
        self.profile = NetworkProfile(1, settings.csms_url, settings.security_profile)
        self.connected = False
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests record waits
        # set by the client after every change of the device model (SetVariables)
        self.dm_changed = asyncio.Event()
        self._credentials = 0  # BasicAuthPassword changes so far (NetworkProfile.credentials)
        self._renewing = False  # the current connection closes for new credentials
        # set by the client: returns once the exchanges in flight are done (Session.settled)
        self.exchanges_settled: Callable[[], Awaitable[None]] = _nothing_pending
        dm.checks[("OCPPCommCtrlr", "NetworkConfigurationPriority")] = networks.check_priority

    def url(self, profile: NetworkProfile | None = None) -> str:
        return (profile or self.profile).url.rstrip("/") + "/" + self._s.identity

    async def run(
        self, serve: Callable[[ClientConnection], Awaitable[None]], lost: Callable[[], None]
    ) -> None:
        """Connects by NetworkConfigurationPriority: NetworkProfileConnectionAttempts tries
        per profile (with the RetryBackOff schedule), then the next one (B10.FR.03/04); when
        every profile of the list failed, as many tries with the profile of the last
        accepted connection (B10.FR.07), then the list again. A lost connection is tried
        again with the same profile. `lost` runs after every connection or attempt."""
        failures = attempts = index = exhausted = 0
        fallback: NetworkProfile | None = None  # B10.FR.07's profile while it is tried
        while True:
            profiles = self.networks.ordered(
                self._dm.value("OCPPCommCtrlr", "NetworkConfigurationPriority")
            )
            profile = fallback or profiles[index % len(profiles)]
            try:
                await self._connection(profile, serve)
            except CONNECTION_ERRORS as exc:
                if not self._renewing:
                    event(
                        log,
                        logging.WARNING,
                        "ocpp_disconnected",
                        url=profile.url,
                        slot=profile.slot,
                        error=str(exc) or type(exc).__name__,
                    )
                    await self._tls_failure(exc)
            finally:
                established, self.connected = self.connected, False
            lost()
            if self._renewing:  # closed on purpose: connect again at once, same profile
                self._renewing = False
                failures = attempts = exhausted = 0
                continue
            if established:  # a new series of attempts, starting with the same profile
                failures = attempts = exhausted = 0
            else:
                attempts += 1
            if attempts >= max(
                1, self._dm.integer("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
            ):
                attempts = 0
                if fallback is not None:
                    fallback = None  # back to the priority list, from its top
                    index = exhausted = 0
                else:
                    index, exhausted = index + 1, exhausted + 1
                    if exhausted >= len(profiles):
                        fallback = self.networks.last_successful()
                        exhausted = 0
            delays = reconnect_delays(
                self._dm.integer("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
                self._dm.integer("OCPPCommCtrlr", "RetryBackOffRandomRange"),
                self._dm.integer("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
                self._rng,
            )
            delay = delays[min(failures, len(delays) - 1)]
            failures += 1
            await self.sleep(delay)

    async def _connection(
        self, profile: NetworkProfile, serve: Callable[[ClientConnection], Awaitable[None]]
    ) -> None:
        self.profile = dataclasses.replace(profile, credentials=self._credentials)
        headers = {}
        password = None
        if profile.security_profile in (1, 2):
            password = self._dm.value("SecurityCtrlr", "BasicAuthPassword")  # A01: may change
            token = f"{self._s.identity}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        async with self._connect(
            self.url(profile),
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=self._s.call_timeout_s,
            ssl=self._tls(profile.security_profile) if profile.url.startswith("wss://") else None,
            ping_interval=self._ping_interval_s(),
            ping_timeout=self._s.call_timeout_s,
        ) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                raise websockets.InvalidHandshake(
                    f"the CSMS did not accept subprotocol {SUBPROTOCOL} (got {ws.subprotocol})"
                )
            self.connected = True
            watch = asyncio.create_task(
                self._renew_on_new_password(ws, password), name="ocpp password watch"
            )
            try:
                await serve(ws)
            finally:
                watch.cancel()
                [outcome] = await asyncio.gather(watch, return_exceptions=True)
                if isinstance(outcome, Exception):  # not the cancellation: it failed
                    event(
                        log,
                        logging.WARNING,
                        "ocpp_password_watch_failed",
                        url=profile.url,
                        error=repr(outcome),
                    )

    async def _renew_on_new_password(self, ws: ClientConnection, used: str | None) -> None:
        """A01 (TC_A_09): once SetVariables has set a BasicAuthPassword other than the
        one this connection was opened with, the station closes it once that call's
        answer is written and connects again at once with the new one, as a new
        registration (it boots again)."""
        if used is None:  # security profile 3: no password
            return
        while True:
            self.dm_changed.clear()
            await self.dm_changed.wait()
            if self._dm.value("SecurityCtrlr", "BasicAuthPassword") != used:
                break
        await self.exchanges_settled()  # the SetVariables answer goes out over this connection
        event(log, logging.INFO, "ocpp_reconnect_new_password", url=self.profile.url)
        self._credentials += 1
        self._renewing = True
        await ws.close(code=1000, reason="new BasicAuthPassword")

    def _ping_interval_s(self) -> float | None:
        """OCPPCommCtrlr.WebSocketPingInterval as set now (0: no pings); a change takes
        effect with the next connection."""
        interval = self._dm.integer("OCPPCommCtrlr", "WebSocketPingInterval")
        return None if interval <= 0 else float(interval)

    async def settle(self) -> None:
        """Booted over the current profile: it is the active one; a higher security profile
        is the new floor and the slots below it leave the priority list (A05.FR.05-07)."""
        dm, profile = self._dm, self.profile
        dm.assign("OCPPCommCtrlr", "ActiveNetworkProfile", str(profile.slot))
        await self.networks.succeeded(profile.slot)
        before = dm.integer("SecurityCtrlr", "SecurityProfile")
        if profile.security_profile <= before:
            return
        await dm.save("SecurityCtrlr", "SecurityProfile", str(profile.security_profile))
        await self._security_event(  # A05: a security parameter changed
            "ReconfigurationOfSecurityParameters",
            f"SecurityCtrlr.SecurityProfile {before} -> {profile.security_profile}",
        )
        kept = [
            p.slot
            for p in self.networks.ordered(
                dm.value("OCPPCommCtrlr", "NetworkConfigurationPriority")
            )
            if p.security_profile >= profile.security_profile
        ]
        await dm.save("OCPPCommCtrlr", "NetworkConfigurationPriority", ",".join(map(str, kept)))
        event(log, logging.INFO, "ocpp_security_upgraded", profile=profile.security_profile)

    async def on_set_network_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        """B09: stores a connection profile in a slot (A05: never below the active level)."""
        problem = await self.networks.set(
            payload["configurationSlot"],
            payload["connectionData"],
            active=self.profile if self.connected else None,
            minimum_security=self._dm.integer("SecurityCtrlr", "SecurityProfile"),
            can_connect=self._can_connect,
        )
        if problem is None:
            return {"status": "Accepted"}
        event(log, logging.WARNING, "ocpp_network_profile_rejected", reason=problem)
        return {
            "status": "Rejected",
            "statusInfo": {"reasonCode": "InvalidValue", "additionalInfo": problem[:512]},
        }

    async def _tls_failure(self, error: BaseException) -> None:
        """A04: a failed TLS connection that is a security event is handed on as one."""
        kind = security_event(error)
        if kind is None:
            return
        event(log, logging.ERROR, "ocpp_security_event", type=kind, error=str(error))
        await self._security_event(kind, str(error))

    def _tls(self, security_profile: int) -> ssl.SSLContext | None:
        """The TLS context for a security profile (None for profile 1); raises if none."""
        if security_profile < 2:
            return None
        if security_profile == self._s.security_profile and self._s.tls is not None:
            return self._s.tls
        if self._s.tls_factory is None:
            raise ValueError("no TLS configuration for this security profile")
        return self._s.tls_factory(security_profile)

    def _can_connect(self, security_profile: int) -> bool:
        try:
            self._tls(security_profile)
        except (ValueError, OSError):
            return False
        return True


async def _nothing_pending() -> None:
    """`exchanges_settled` without a client: no exchanges to wait for."""
