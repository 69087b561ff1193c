"""/ws/dashboard/: a clinician watches wards and patients live.

Thin: frames are decoded by ``monitoring.protocol``; subscriptions join the live hub's groups
(``live.hub``) and read a snapshot (``monitoring.snapshot``); live events become frames. The
full protocol is in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.ws_auth import WsSession, ws_authenticate, ws_user_is_active, ws_user_payload
from audit.services import audit_subscription
from common import metrics
from common.errors import ApplicationError
from monitoring import protocol
from monitoring.consumers.frames import FrameConsumer
from monitoring.live.events import LiveEvent
from monitoring.live.feed import LiveFeed, groups_join, groups_leave, live_feed
from monitoring.live.groups import user_group
from monitoring.live.hub import hub_get
from monitoring.live.registry import dashboard_frames
from monitoring.live.subscriptions import SUBSCRIPTION_KINDS, Scope
from monitoring.protocol import CloseCode
from monitoring.snapshot import dashboard_snapshot


class DashboardConsumer(FrameConsumer):
    """/ws/dashboard/: a clinician watches wards and patients live."""

    session: WsSession | None = None
    gone = False  # set by disconnect
    last_patient_change: dict[str, Any] | None = None

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
        self.live_backlog: deque[LiveEvent] = deque()
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
        if self.session is None and frame["type"] != "auth":
            await self.close(CloseCode.NOT_AUTHENTICATED, "the first frame must be auth")
            return
        command = protocol.dashboard_command(
            frame, kinds=list(SUBSCRIPTION_KINDS), registered=dashboard_frames
        )
        if isinstance(command, protocol.Authenticate):
            await self._auth(command)
        elif isinstance(command, protocol.Subscribe):
            await self._subscribe(command)
        elif isinstance(command, protocol.Unsubscribe):
            await self._unsubscribe(command)
        elif isinstance(command, protocol.Ping):
            await self.send_json({"type": "pong"})
        elif isinstance(command, protocol.Registered):
            await self._registered(command.frame)
        else:
            await self.send_json(command.frame())

    async def _auth(self, command: protocol.Authenticate) -> None:
        try:
            session = await database_sync_to_async(ws_authenticate)(command.token)
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
        """Join the live groups of what is watched (``live.hub``: this process delivers
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

    # Group event: the user was deactivated or logged out everywhere, or (``session``) the
    # login session of this connection's token was logged out.
    async def session_end(self, event: dict[str, Any]) -> None:
        ended = event.get("session")
        if ended is not None and self._user_session().session_id != ended:
            return  # another login of the same person
        await self.close(CloseCode.NOT_AUTHENTICATED, "session ended")

    # The live feed of this process (``live.feed``): told when Redis goes away, and
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
        patients = await database_sync_to_async(dashboard_snapshot)(**{f"{kind}_id": object_id})
        await database_sync_to_async(audit_subscription)(
            user=self.session and self.session.user,
            scope=self.scope,
            resource_type=kind,
            resource_id=object_id,
            patients=[p["id"] for p in patients],
        )
        await self.send_json({"type": "snapshot", kind: object_id, "patients": patients})

    async def _subscribe(self, command: protocol.Subscribe) -> None:
        kind, object_id = command.kind, command.object_id
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

    async def _unsubscribe(self, command: protocol.Unsubscribe) -> None:
        await self._leave(command.kind, command.object_id)
        await self.send_json({"type": "unsubscribed", command.kind: command.object_id})

    async def _leave(self, kind: str, object_id: int) -> None:
        self.scopes.pop((kind, object_id), None)
        await self._sync_groups()

    async def _registered(self, frame: dict[str, Any]) -> None:
        """A frame type a higher app registered (``live.registry``), e.g. ``alert.ack``."""
        handler, reply_key = dashboard_frames[frame["type"]]
        user = self._user_session().user
        try:
            reply = await database_sync_to_async(handler)(user=user, frame=frame)
        except ApplicationError as exc:
            await self.send_application_error(
                exc, **{reply_key: protocol.echo(frame.get(reply_key))}
            )
            return
        await self.send_json(reply)

    # --- Live events (``live.hub``) and group events ---------------------------------
    async def live_event(self, event: LiveEvent) -> None:
        if self._dispatching.locked():
            # A handler is running (a subscribe between its join and its snapshot, say): the
            # event follows its reply, as channel-layer events did.
            self.live_backlog.append(event)
            return
        await self._live_handle(event)

    async def handled(self) -> None:
        while self.live_backlog:
            await self._live_handle(self.live_backlog.popleft())

    async def _live_handle(self, event: LiveEvent) -> None:
        if self.session is None:
            return
        if event.data["type"] == "reading.batch":
            await self._readings(event)
            return
        handler = getattr(self, get_handler_name(event.data), None)
        if handler is not None:
            await handler(event.data)

    def _in_scope(self, *, ward_id: Any, patient_id: Any) -> bool:
        return ("ward", ward_id) in self.scopes or ("patient", patient_id) in self.scopes

    async def _readings(self, event: LiveEvent) -> None:
        # ``reading.batch``. A group carries a whole ward (or one ward-less patient). A ward
        # subscription gets all of it, as one frame encoded once for every such dashboard of
        # this process; a patient subscription gets its patient's items.
        items = event.data["items"]
        if items and ("ward", items[0].get("ward")) in self.scopes:
            await self.send(text_data=event.retyped("readings"))
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
        await self._patient_frame(event, "note", "action", "note")

    async def ctg_classification(self, event: dict[str, Any]) -> None:
        # A patient's CTG classification changed (alerts.ctg_alarms): its ward's tiles and
        # its own view show it.
        await self._patient_frame(event, "ctg", "ctg")

    async def patient_changed(self, event: dict[str, Any]) -> None:
        # A patient was admitted, moved, updated or discharged (clinical's ``patient_changed``,
        # whoever made the change): the ward views add, move or drop the tile; a watched
        # patient's view follows them, or ends if they moved where the viewer may not look.
        if event == self.last_patient_change:
            return  # the same change heard on both its wards' groups
        self.last_patient_change = event
        ward_id, from_ward_id = event["ward"], event["from_ward"]
        watched = self.scopes.get(("patient", event["patient"]))
        if not (
            watched is not None
            or (ward_id is not None and ("ward", ward_id) in self.scopes)
            or (from_ward_id is not None and ("ward", from_ward_id) in self.scopes)
        ):
            return
        same_place = event["place"] == event["from_place"]
        if same_place and watched in (None, (event["place"], ward_id)):
            # Access is by place: within one, whoever saw the patient still may.
            await self._patient_follow(event, visible=True)
        else:
            # A query (may the viewer look at the other place?) or a join (the watched
            # patient's new ward): not on the hub's delivery, which waits for this handler.
            self._spawn(self._patient_follow(event, visible=True if same_place else None))

    async def _patient_follow(self, event: dict[str, Any], *, visible: bool | None) -> None:
        patient_id, ward_id = event["patient"], event["ward"]
        if visible is None:
            visible = await self._may_watch("patient", patient_id)
        watching = ("patient", patient_id) in self.scopes
        if watching:
            if visible:
                self.scopes[("patient", patient_id)] = (event["place"], ward_id)
            else:
                del self.scopes[("patient", patient_id)]
            # Listening on the new ward's group before the frame goes out: whatever follows
            # the frame reaches this dashboard.
            await self._sync_groups()
        in_ward = ward_id is not None and ("ward", ward_id) in self.scopes
        await self.send_json(
            {
                "type": "patient",
                "action": event["action"],
                "patient": patient_id,
                "ward": ward_id if visible else None,
                "from_ward": event["from_ward"],
                "entry": event["entry"] if visible and (watching or in_ward) else None,
            }
        )
        if watching and not visible:
            await self.send_error(
                "forbidden", "Access to this patient was withdrawn.", None, patient=patient_id
            )

    async def _patient_frame(self, event: dict[str, Any], kind: str, *fields: str) -> None:
        """A frame about one patient, to the subscribers of the patient and of its ward."""
        if self._in_scope(ward_id=event.get("ward"), patient_id=event.get("patient")):
            frame = {"type": kind, "patient": event["patient"], "ward": event.get("ward")}
            await self.send_json({**frame, **{name: event[name] for name in fields}})
