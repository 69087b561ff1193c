"""The two WebSocket channels: devices stream readings in, dashboards watch wards and patients.

Both are thin: they parse frames, authorize, hand work to the ingest batcher
(``realtime.batcher``) or a selector, and render results. The full protocol is in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections import deque
from typing import Any

from asgiref.typing import WebSocketScope
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from accounts.ws_auth import WsSession, ws_authenticate, ws_user_is_active, ws_user_payload
from audit.services import audit_subscription
from clinical.models import Device
from clinical.selectors import device_by_token, device_get
from common import metrics
from common.errors import ApplicationError, ErrorDetails
from common.logs import log_context_bind
from common.strictjson import json_loads
from monitoring import selectors
from monitoring.ingest import Target, reading_parse
from monitoring.realtime.batcher import batcher_get
from monitoring.realtime.events import device_status_events
from monitoring.realtime.groups import device_group, user_group
from monitoring.realtime.hub import hub_get
from monitoring.realtime.outage import (
    LiveFeed,
    groups_join,
    groups_leave,
    live_feed,
    live_send,
    receive_resilient,
)
from monitoring.realtime.registry import dashboard_frames
from monitoring.realtime.subscriptions import SUBSCRIPTION_KINDS, Scope

logger = logging.getLogger(__name__)


class CloseCode:
    """Application close codes (4000-4999) used by both channels."""

    NOT_AUTHENTICATED = 4401  # missing/bad device token; dashboard auth missing/bad/expired
    DEVICE_INACTIVE = 4403  # the device is deactivated
    DEVICE_UNASSIGNED = 4409  # the device is not assigned to a patient
    # The database cannot be reached to authenticate the device: reconnect with back-off.
    # (1013 "try again later" is what this means in RFC 6455 terms, but an ASGI server may send
    # only 1000 and 3000-4999; Daphne refuses 1013 and sends nothing.)
    STORAGE_UNAVAILABLE = 4503


DEVICE_RECHECK_SECONDS = 60.0
_recheck_sleep = asyncio.sleep  # (a test replaces it to drive the periodic re-check)
LAYER_RETRY_SECONDS = 1.0
MAX_ID = 2**63 - 1  # the largest id a query can name (a larger one overflows the driver)


class FrameConsumer(AsyncWebsocketConsumer):
    """JSON frames with a size limit and the contract's error frame."""

    max_frame_bytes = 0  # settings.WS_MAX_FRAME_BYTES, read once per connection

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' loop, made lean for a connection that receives thousands of frames: it
        waits on the client and the channel layer together with ``asyncio.wait`` and a new
        task per message. Here the client's messages are awaited directly and the channel
        layer's (rare control events) by a task of their own; a lock keeps the handlers one
        at a time, as before. A channel layer that fails (Redis unreachable) is retried after
        a pause instead of ending the connection."""
        self.scope = scope
        self.base_send = send
        self.max_frame_bytes = settings.WS_MAX_FRAME_BYTES
        self._dispatching = asyncio.Lock()
        layer = get_channel_layer(self.channel_layer_alias)
        layer_task = None
        if layer is not None:
            self.channel_layer = layer
            self.channel_name = await layer.new_channel()
            layer_task = asyncio.create_task(self._layer_receive(layer))
        try:
            while True:
                message = await receive()
                await self._dispatch_one(message)
        except StopConsumer:
            pass
        finally:
            if layer_task is not None:
                layer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await layer_task

    async def _layer_receive(self, layer: Any) -> None:
        # Outlasts a Redis outage: reported to the live feed and retried with back-off
        # (``realtime.outage.receive_resilient``), the connection stays open.
        receive = receive_resilient(functools.partial(layer.receive, self.channel_name))
        while True:
            try:
                message = await receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("channel layer receive failed, retrying: %r", exc)
                await asyncio.sleep(LAYER_RETRY_SECONDS)
                continue
            await self._dispatch_one(message)

    async def _dispatch_one(self, message: dict[str, Any]) -> None:
        async with self._dispatching:
            await self.dispatch(message)
            await self.handled()

    async def handled(self) -> None:
        """Runs after each handler, still in turn (the dashboard's queued live events)."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' default dispatch runs close_old_connections() in a worker thread before
        # every message: a thread hop per frame and per group event, serialised on one
        # thread. These consumers never use the ORM on the event loop; their database work
        # runs in database_sync_to_async (which closes stale connections itself) or in the
        # ingest batcher's threads.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw: str | bytes = text_data if text_data is not None else (bytes_data or b"")
        size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
        if size > self.max_frame_bytes:
            await self.send_error(
                "frame_too_large",
                f"Frames are limited to {self.max_frame_bytes} bytes.",
                {"size": [str(size)]},
            )
            return
        try:
            frame = json_loads(raw)
        except ValueError as exc:  # also NaN, Infinity, nesting too deep, invalid UTF-8
            await self.send_error("parse_error", f"The frame is not valid JSON: {exc}")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_error("invalid_frame", 'A frame is a JSON object with a "type".')
            return
        await self.receive_frame(frame)

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def send_error(
        self,
        code: str,
        message: str,
        details: ErrorDetails | None = None,
        **extra: Any,
    ) -> None:
        await self.send_json(
            {
                "type": "error",
                **extra,
                "error": {"code": code, "message": message, "details": details},
            }
        )

    async def send_application_error(self, exc: ApplicationError, **extra: Any) -> None:
        await self.send_error(exc.code, exc.message, exc.details, **extra)

    async def unknown_type(self, frame: dict[str, Any]) -> None:
        await self.send_error(
            "unknown_type", f"Unknown frame type {frame['type']!r}.", {"type": [frame["type"]]}
        )


def _echo(value: Any) -> Any:
    """A value of a refused frame said back to the client (the seq, the alert id): as sent when
    it is a scalar, null when it is an array or object (which may be nested deeply)."""
    return None if isinstance(value, (dict, list)) else value


def _echo_seq(raw: Any) -> Any:
    return _echo(raw.get("seq")) if isinstance(raw, dict) else None


def _header(scope: WebSocketScope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _device_token(scope: WebSocketScope) -> str:
    scheme, _, token = _header(scope, b"authorization").strip().partition(" ")
    return token.strip() if scheme.lower() == "device" else ""


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
        token = _device_token(self.scope)
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
        self.feed = live_feed()
        self.recheck_task = asyncio.create_task(self._recheck_periodically())
        self.device, self.target = device, target
        metrics.WS_CONNECTIONS.labels(kind="device").inc()  # metrics
        # Every line logged for this connection from here on names the device and patient.
        log_context_bind(device_id=device.id, patient_id=target.patient_id)
        logger.info("device %s connected", device.serial)
        self.batcher.device_connected(
            device.id, patient_id=target.patient_id, token_hash=device.token_hash
        )
        # Redis away: the device still streams (stored and acked); its group is joined when
        # the live feed is restored (``live_restored``).
        self.feed.listen(self)
        await groups_join(self.channel_layer, self.channel_name, [device_group(device.id)])
        await self.batcher.presence_flush()
        await live_send(self._status_events(online=True), feed=self.feed)

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
        self.batcher.device_disconnected(self.device.id)
        await self.batcher.presence_flush()
        await live_send(self._status_events(online=False), feed=self.feed)
        logger.info("device %s disconnected (close code %s)", self.device.serial, code)

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        if self.device is None:
            return
        kind = frame["type"]
        if kind == "reading":
            await self._ingest([frame])
        elif kind == "readings":
            items = frame.get("items")
            if not isinstance(items, list):
                await self.send_error(
                    "validation_error",
                    '"items" must be a list of readings.',
                    {"items": ["Must be a list."]},
                )
            elif not items:
                await self.send_error(
                    "validation_error",
                    '"items" must hold at least one reading.',
                    {"items": ["Must not be empty."]},
                )
            elif len(items) > settings.WS_MAX_BATCH_ITEMS:
                await self.send_error(
                    "batch_too_large",
                    f"A batch holds at most {settings.WS_MAX_BATCH_ITEMS} readings.",
                    {"items": [str(len(items))]},
                )
            else:
                await self._ingest(items)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.unknown_type(frame)

    async def _ingest(self, items: list[Any]) -> None:
        _, target = self._connected()
        valid = []
        for raw in items:
            try:
                valid.append(reading_parse(raw, target=target, require_seq=True))
            except ApplicationError as exc:
                metrics.READINGS_REJECTED.labels(code=exc.code).inc()  # metrics
                await self.send_application_error(exc, seq=_echo_seq(raw))
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
            # Every seq is an int (``reading_parse`` requires one): the frame that
            # ``send_json`` would encode, without the encoder's per-call cost.
            await self.send(text_data='{"type":"ack","seqs":[' + ",".join(map(str, acked)) + "]}")

    # Group event: an admin changed the device (deactivated, reassigned, rotated its token).
    async def device_changed(self, event: dict[str, Any]) -> None:
        await self._recheck()

    # The live feed of this process (``realtime.outage``): the device protocol is unchanged by
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


class DashboardConsumer(FrameConsumer):
    """/ws/dashboard/: a clinician watches wards and patients live."""

    session: WsSession | None = None
    gone = False  # set by disconnect

    def _user_session(self) -> WsSession:
        """The session: set by the first frame (auth); later frames and the session watch come
        after it."""
        assert self.session is not None
        return self.session

    async def connect(self) -> None:
        await self.accept()
        metrics.WS_CONNECTIONS.labels(kind="dashboard").inc()  # metrics
        # ("ward" | "patient", id) -> (place id, ward id) of each subscription; the groups
        # joined are derived from them (a watched patient is heard through its ward's group).
        self.scopes: dict[tuple[str, int], Scope] = {}
        self.joined: set[str] = set()
        self.live_backlog: deque[dict[str, Any]] = deque()
        self.tasks: set[asyncio.Task] = set()
        self.feed = live_feed()
        self.feed.listen(self)
        self._spawn(self._auth_deadline())

    def _spawn(self, coroutine: Any) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def disconnect(self, code: int) -> None:
        metrics.WS_CONNECTIONS.labels(kind="dashboard").dec()  # metrics
        self.feed.unlisten(self)
        for task in list(self.tasks):
            task.cancel()
        self.gone = True
        hub = hub_get()
        for group in self.joined:
            hub.leave(group, self)
        self.joined = set()
        await groups_leave(self.channel_layer, self.channel_name, self._layer_groups())

    def _layer_groups(self) -> set[str]:
        """The channel-layer groups of this connection: its user's (its subscriptions' live
        events come through the hub)."""
        return {user_group(self.session.user.id)} if self.session is not None else set()

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.DASHBOARD_AUTH_TIMEOUT)
        if self.session is None:
            await self.close(CloseCode.NOT_AUTHENTICATED, "no auth frame in time")

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if self.session is None and kind != "auth":
            await self.close(CloseCode.NOT_AUTHENTICATED, "the first frame must be auth")
            return
        handler = {
            "auth": self._auth,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "ping": self._ping,
        }.get(kind)
        if handler is None:
            handler = self._registered if kind in dashboard_frames else self.unknown_type
        await handler(frame)

    async def _auth(self, frame: dict[str, Any]) -> None:
        try:
            session = await database_sync_to_async(ws_authenticate)(frame.get("token"))
        except ApplicationError:
            await self.close(CloseCode.NOT_AUTHENTICATED, "invalid token")
            return
        if self.session is not None and session.user.id != self.session.user.id:
            await self.close(CloseCode.NOT_AUTHENTICATED, "a session cannot change user")
            return
        first = self.session is None
        self.session = session
        payload = await database_sync_to_async(ws_user_payload)(session.user)
        if first:
            await groups_join(self.channel_layer, self.channel_name, [user_group(session.user.id)])
            self._spawn(self._session_watch())
        await self.send_json(
            {"type": "auth.ok", "user": payload, "expires_at": int(session.expires_at)}
        )
        if first and self.feed.degraded:
            await self.send_json(self.feed.frame())

    async def _session_watch(self) -> None:
        """The session rule: close 4401 at token expiry (unless re-authenticated in band) and
        when the user is deactivated; drop subscriptions to places no longer granted."""
        interval = settings.DASHBOARD_SESSION_CHECK_SECONDS
        while True:
            await asyncio.sleep(
                max(0.0, min(interval, self._user_session().expires_at - time.time()))
            )
            if time.time() >= self._user_session().expires_at:
                await self.close(CloseCode.NOT_AUTHENTICATED, "access token expired")
                return
            if not await database_sync_to_async(ws_user_is_active)(self._user_session().user.id):
                await self.close(CloseCode.NOT_AUTHENTICATED, "user deactivated")
                return
            for kind, object_id in list(self.scopes):
                if not await self._may_watch(kind, object_id):
                    await self._leave(kind, object_id)
                    await self.send_error(
                        "forbidden",
                        f"Access to this {kind} was withdrawn.",
                        None,
                        **{kind: object_id},
                    )
            await self._follow_transfers()

    async def _follow_transfers(self) -> None:
        """A watched patient moved to another ward: listen on the new ward's group."""
        moved = False
        for (kind, object_id), scope in list(self.scopes.items()):
            if not SUBSCRIPTION_KINDS[kind].moves:
                continue
            found = await database_sync_to_async(SUBSCRIPTION_KINDS[kind].locate)(object_id)
            if found is not None and found != scope:
                self.scopes[(kind, object_id)] = found
                moved = True
        if moved:
            await self._sync_groups()

    def _needed_groups(self) -> set[str]:
        return {
            SUBSCRIPTION_KINDS[kind].group(object_id, scope)
            for (kind, object_id), scope in self.scopes.items()
        }

    async def _may_watch(self, kind: str, object_id: int) -> bool:
        visible = SUBSCRIPTION_KINDS[kind].visible
        return await database_sync_to_async(visible)(self._user_session().user, object_id)

    async def _sync_groups(self) -> None:
        """Join the live groups of what is watched (``realtime.hub``: this process delivers
        them), leave the others."""
        hub = hub_get()
        needed = self._needed_groups()
        for group in self.joined - needed:
            hub.leave(group, self)
        for group in needed - self.joined:
            await hub.join(group, self)
        if self.gone:  # disconnected while joining
            for group in needed:
                hub.leave(group, self)
            return
        self.joined = needed

    # Group event: the user was deactivated or logged out everywhere.
    async def session_end(self, event: dict[str, Any]) -> None:
        await self.close(CloseCode.NOT_AUTHENTICATED, "session ended")

    async def _ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    # The live feed of this process (``realtime.outage``): told when Redis goes away, and
    # resynchronised (groups joined again, a fresh snapshot per subscription) when it is back.
    async def live_degraded(self, feed: LiveFeed) -> None:
        if self.session is not None:
            await self.send_json(feed.frame())

    async def live_restored(self, feed: LiveFeed) -> None:
        if self.session is None:
            return
        await groups_join(self.channel_layer, self.channel_name, self._layer_groups())
        await self.send_json({"type": "live.restored"})
        for kind, object_id in list(self.scopes):
            await self._snapshot_send(kind, object_id)

    async def _snapshot_send(self, kind: str, object_id: int) -> None:
        patients = await database_sync_to_async(selectors.dashboard_snapshot)(
            **{f"{kind}_id": object_id}
        )
        await database_sync_to_async(audit_subscription)(
            user=self.session and self.session.user,
            scope=self.scope,
            resource_type=kind,
            resource_id=object_id,
            patients=[p["id"] for p in patients],
        )
        await self.send_json({"type": "snapshot", kind: object_id, "patients": patients})

    def _scope_of(self, frame: dict[str, Any]) -> tuple[str, int] | None:
        keys = [k for k in SUBSCRIPTION_KINDS if k in frame]
        if len(keys) != 1:
            return None
        value = frame[keys[0]]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
            return None
        return keys[0], value

    async def _bad_scope(self, frame: dict[str, Any]) -> None:
        await self.send_error(
            "validation_error",
            'Name exactly one of "ward" or "patient" (a positive integer id).',
            {"ward": ["A positive integer."], "patient": ["A positive integer."]},
        )

    async def _subscribe(self, frame: dict[str, Any]) -> None:
        scope = self._scope_of(frame)
        if scope is None:
            await self._bad_scope(frame)
            return
        kind, object_id = scope
        found = await database_sync_to_async(SUBSCRIPTION_KINDS[kind].locate)(object_id)
        # A missing one and one outside the user's places get the same answer (as in REST):
        # the reply must not tell whether another place's ward or patient exists.
        if found is None or not await self._may_watch(kind, object_id):
            await database_sync_to_async(audit_subscription)(
                user=self.session and self.session.user,
                scope=self.scope,
                resource_type=kind,
                resource_id=object_id,
                found=False,
            )
            await self.send_error("not_found", f"No such {kind}.", None, **{kind: object_id})
            return
        # Join before reading the snapshot so nothing falls between the two.
        self.scopes[(kind, object_id)] = found
        await self._sync_groups()
        await self._snapshot_send(kind, object_id)

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        scope = self._scope_of(frame)
        if scope is None:
            await self._bad_scope(frame)
            return
        await self._leave(*scope)
        await self.send_json({"type": "unsubscribed", scope[0]: scope[1]})

    async def _leave(self, kind: str, object_id: int) -> None:
        self.scopes.pop((kind, object_id), None)
        await self._sync_groups()

    async def _registered(self, frame: dict[str, Any]) -> None:
        """A frame type a higher app registered (``realtime.registry``), e.g. ``alert.ack``."""
        handler, reply_key = dashboard_frames[frame["type"]]
        user = self._user_session().user
        try:
            reply = await database_sync_to_async(handler)(user=user, frame=frame)
        except ApplicationError as exc:
            await self.send_application_error(exc, **{reply_key: _echo(frame.get(reply_key))})
            return
        await self.send_json(reply)

    # --- Live events (``realtime.hub``) and group events ---------------------------------
    async def live_event(self, event: dict[str, Any]) -> None:
        if self._dispatching.locked():
            # A handler is running (a subscribe between its join and its snapshot, say): the
            # event follows its reply, as channel-layer events did.
            self.live_backlog.append(event)
            return
        await self._live_handle(event)

    async def handled(self) -> None:
        while self.live_backlog:
            await self._live_handle(self.live_backlog.popleft())

    async def _live_handle(self, event: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(event), None)
        if handler is not None and self.session is not None:
            await handler(event)

    def _in_scope(self, *, ward_id: Any, patient_id: Any) -> bool:
        return ("ward", ward_id) in self.scopes or ("patient", patient_id) in self.scopes

    async def reading_batch(self, event: dict[str, Any]) -> None:
        # A group carries a whole ward (or one ward-less patient). A ward subscription gets
        # all of it, as one frame encoded once for every such dashboard of this process; a
        # patient subscription gets its patient's items.
        items = event["items"]
        if items and ("ward", items[0].get("ward")) in self.scopes:
            text = event.get("_frame")
            if text is None:
                text = event["_frame"] = json.dumps(
                    {"type": "readings", "items": items}, separators=(",", ":")
                )
            await self.send(text_data=text)
            return
        items = [
            item
            for item in items
            if self._in_scope(ward_id=item.get("ward"), patient_id=item.get("patient"))
        ]
        if items:
            await self.send_json({"type": "readings", "items": items})

    async def device_status(self, event: dict[str, Any]) -> None:
        if self._in_scope(ward_id=event.get("ward"), patient_id=event.get("patient")):
            await self.send_json(event)

    async def audio_state(self, event: dict[str, Any]) -> None:
        # The ward's alarm audio was paused or resumed (alerts.audio): every station shows it.
        if ("ward", event.get("ward")) in self.scopes:
            await self.send_json({**event, "type": "audio"})

    async def alert_event(self, event: dict[str, Any]) -> None:
        alert = event.get("alert") or {}
        if not self._in_scope(ward_id=alert.get("ward"), patient_id=alert.get("patient")):
            return
        await self.send_json({"type": "alert", "alert": event["alert"]})

    async def note_event(self, event: dict[str, Any]) -> None:
        # A strip note was written, corrected or annotated (monitoring.notes).
        if self._in_scope(ward_id=event.get("ward"), patient_id=event.get("patient")):
            await self.send_json(
                {
                    "type": "note",
                    "patient": event["patient"],
                    "ward": event.get("ward"),
                    "action": event["action"],
                    "note": event["note"],
                }
            )

    async def ctg_classification(self, event: dict[str, Any]) -> None:
        # A patient's CTG classification changed (alerts.ctg_evaluate): its ward's tiles and
        # its own view show it.
        if self._in_scope(ward_id=event.get("ward"), patient_id=event.get("patient")):
            await self.send_json(
                {
                    "type": "ctg",
                    "patient": event["patient"],
                    "ward": event.get("ward"),
                    "ctg": event["ctg"],
                }
            )
