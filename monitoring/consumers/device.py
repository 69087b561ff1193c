"""/ws/devices/: a bedside monitor streams readings in; acks follow durable storage.

Thin: frames are decoded by ``monitoring.protocol``, readings handed to the ingest batcher
(``ingest.batcher``), which tells the connection once they are stored. The full protocol is
in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from clinical.models import Device
from clinical.selectors import device_by_token, device_get
from common import metrics
from common.errors import ApplicationError
from common.logs import log_context_bind
from monitoring import protocol, selectors
from monitoring.consumers.frames import FrameConsumer
from monitoring.ingest.batcher import batcher_get
from monitoring.live.events import device_status_events
from monitoring.live.feed import LiveFeed, groups_join, groups_leave, live_feed
from monitoring.live.groups import device_group
from monitoring.live.publish import live_publish
from monitoring.protocol import CloseCode
from monitoring.readings import RecordedAtWindow, Target, reading_parse

logger = logging.getLogger(__name__)

DEVICE_RECHECK_SECONDS = 60.0
_recheck_sleep = asyncio.sleep  # (a test replaces it to drive the periodic re-check)


@database_sync_to_async
def _device_load(*, token: str | None = None, device_id: int | None = None) -> Device | None:
    if token is not None:
        return device_by_token(token)
    assert device_id is not None
    return device_get(device_id=device_id)


class DeviceConsumer(FrameConsumer):
    """/ws/devices/: a bedside monitor streams readings; acks follow durable storage."""

    device: Device | None = None
    target: Target | None = None

    async def connect(self) -> None:
        await self.accept()  # then close with a code the device can read
        token = protocol.device_token(self.scope.get("headers", []))
        try:
            device = await _device_load(token=token) if token else None
        except DatabaseError:
            logger.warning("device connection refused: the database is unavailable")
            await self.close(CloseCode.STORAGE_UNAVAILABLE, "storage unavailable")
            return
        if device is None:
            await self.close(CloseCode.NOT_AUTHENTICATED, "bad or missing device token")
            return
        if not device.is_active:
            await self.close(CloseCode.DEVICE_INACTIVE, "device inactive")
            return
        target = selectors.device_target(device)
        if target is None:
            await self.close(CloseCode.DEVICE_UNASSIGNED, "device not assigned to a patient")
            return
        self.batcher = batcher_get()
        self.max_items = settings.WS_MAX_BATCH_ITEMS
        self.feed = live_feed()
        self.recheck_task = asyncio.create_task(self._recheck_periodically())
        self.device, self.target = device, target
        metrics.WS_CONNECTIONS.labels(kind="device").inc()  # metrics
        # Every line logged for this connection from here on names the device and patient.
        log_context_bind(device_id=device.id, patient_id=target.patient_id)
        logger.info("device %s connected", device.serial)
        self.batcher.presence.device_connected(
            device.id, patient_id=target.patient_id, token_hash=device.token_hash
        )
        # Redis away: the device still streams (stored and acked); its group is joined when
        # the live feed is restored (``live_restored``).
        self.feed.listen(self)
        await groups_join(self.channel_layer, self.channel_name, [device_group(device.id)])
        await self.batcher.presence.flush()
        await live_publish(self._status_events(online=True))

    def _connected(self) -> tuple[Device, Target]:
        """The device and where its readings go: set by ``connect`` before the device's first
        frame or group event, and kept while it stays connected."""
        assert self.device is not None and self.target is not None
        return self.device, self.target

    def _status_events(self, *, online: bool) -> list[tuple[str, dict[str, Any]]]:
        device, target = self._connected()
        return device_status_events(
            device_id=device.id,
            serial=device.serial,
            patient_id=target.patient_id,
            ward_id=target.ward_id,
            online=online,
            last_seen_at=timezone.now().isoformat(),
        )

    async def disconnect(self, code: int) -> None:
        if self.device is None:
            return
        metrics.WS_CONNECTIONS.labels(kind="device").dec()  # metrics
        self.recheck_task.cancel()
        self.feed.unlisten(self)
        await groups_leave(self.channel_layer, self.channel_name, [device_group(self.device.id)])
        self.batcher.presence.device_disconnected(self.device.id)
        await self.batcher.presence.flush()
        await live_publish(self._status_events(online=False))
        logger.info("device %s disconnected (close code %s)", self.device.serial, code)

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        if self.device is None:
            return
        command = protocol.device_command(frame, max_items=self.max_items)
        if isinstance(command, protocol.SendReadings):
            await self._ingest(command.items)
        elif isinstance(command, protocol.Ping):
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(command.frame())

    async def _ingest(self, items: list[Any]) -> None:
        _, target = self._connected()
        window = RecordedAtWindow.at()  # once per frame: the settings and the clock
        valid = []
        for raw in items:
            try:
                valid.append(reading_parse(raw, target=target, require_seq=True, window=window))
            except ApplicationError as exc:
                metrics.READINGS_REJECTED.labels(code=exc.code).inc()  # metrics
                await self.send_application_error(exc, seq=protocol.echo_seq(raw))
        if not valid:
            return
        # The batcher tells this connection after the flush (``readings_stored``).
        self.batcher.submit_for(self, valid, {target.patient_id: target.ward_id})

    # The ingest batcher's report, once per flush for all this connection's frames in it.
    async def readings_failed(self, seqs: list[int | None]) -> None:
        # Nothing of them was stored: say so, naming the seqs. The connection stays open; the
        # device resends them after a back-off (resending is always safe).
        await self.send_error(
            "storage_unavailable",
            "Storage is unavailable; these readings were not stored. "
            "Send them again after a back-off.",
            None,
            seqs=seqs,
        )

    async def readings_stored(self, seqs: list[int | None], refused_seqs: set[int | None]) -> None:
        for seq in refused_seqs:
            await self.send_error(
                "not_storable",
                "The database refused this reading; it was not stored. Do not resend it.",
                None,
                seq=seq,
            )
        acked = [seq for seq in seqs if seq not in refused_seqs]
        if acked:
            await self.send(text_data=protocol.ack_text(acked))

    # Group event: an admin changed the device (deactivated, reassigned, rotated its token).
    async def device_changed(self, event: dict[str, Any]) -> None:
        await self._recheck()

    # The live feed of this process (``live.feed``): the device protocol is unchanged by
    # an outage; once Redis is back the device's group is joined again (a restarted Redis has
    # forgotten it) and a change missed meanwhile is looked for.
    async def live_degraded(self, feed: LiveFeed) -> None:
        pass

    async def live_restored(self, feed: LiveFeed) -> None:
        device, _ = self._connected()
        await groups_join(self.channel_layer, self.channel_name, [device_group(device.id)])
        await self._recheck()

    async def _recheck_periodically(self) -> None:
        # Each connection on a phase of its own: devices that connected together (a server
        # restart, a network blip) re-check spread over the period, not in one burst of
        # hundreds of queries every minute.
        await _recheck_sleep(random.uniform(0, DEVICE_RECHECK_SECONDS))
        while True:
            await self._recheck()
            await _recheck_sleep(DEVICE_RECHECK_SECONDS)

    async def _recheck(self) -> None:
        connected, _ = self._connected()
        device = await _device_load(device_id=connected.id)
        if device is None or device.token_hash != connected.token_hash:
            await self.close(CloseCode.NOT_AUTHENTICATED, "device token no longer valid")
        elif not device.is_active:
            await self.close(CloseCode.DEVICE_INACTIVE, "device inactive")
        elif (target := selectors.device_target(device)) != self.target:
            # Reassigned or unassigned: reconnecting makes the new assignment explicit.
            await self.close(CloseCode.DEVICE_UNASSIGNED, "device assignment changed")
        else:
            self.target = target
