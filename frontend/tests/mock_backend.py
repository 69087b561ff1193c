"""A scripted backend for browser tests of the dashboard's own behaviour (rendering speed,
reconnect logic, keyboard use): REST answered by Playwright routes and the dashboard
WebSocket by a Playwright WebSocket route. The end-to-end tests against a real Daphne,
Redis and database are in test_dashboard_live.py; this only makes the client-side cases
fast and deterministic.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def fake_jwt(lifetime_s: int = 3600) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iat": now, "exp": now + lifetime_s, "jti": uuid.uuid4().hex}
    return f"{b64({'alg': 'HS256'})}.{b64(claims)}.sig"


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def make_patients(count: int, *, obstetric_every: int = 3) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    patients = []
    for i in range(1, count + 1):
        obstetric = i % obstetric_every == 0
        latest = {"heart_rate": {"bpm": 70 + i % 30, "recorded_at": iso(now), "seq": 1}}
        if obstetric:
            latest["fetal_heart_rate"] = {"bpm": 135 + i % 10, "recorded_at": iso(now), "seq": 1}
        patients.append(
            {
                "id": i,
                "name": f"Patient {i:02d}",
                "bed": f"{i}",
                "monitoring_profile": "obstetric" if obstetric else "adult",
                "device": {
                    "id": 100 + i,
                    "serial": f"JAN-{i:06d}",
                    "is_active": True,
                    "online": True,
                    "last_seen_at": iso(now),
                },
                "latest": latest,
                "alerts": [],
            }
        )
    return patients


class MockBackend:
    def __init__(self, page, *, patients: list[dict[str, Any]], ward_id: int = 1) -> None:
        self.page = page
        self.patients = patients
        self.ward_id = ward_id
        self.sockets: list[Any] = []
        self.received: list[dict[str, Any]] = []
        self.acknowledged: list[int] = []
        self.alerts: dict[int, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []  # what GET /api/patients/<id>/notes/ lists
        self.seq = 1
        self.access_lifetime = 3600
        self.issued: list[str] = []
        self.refreshes = 0
        self.role = "nurse"
        self.must_change_password = False  # True: the login is a one-time password
        self.pause_seconds = 120
        self.audio: dict[str, Any] = {"state": "sounding", "pause": None}
        self.audio_calls: list[tuple[str, dict[str, Any]]] = []
        page.route("**/api/**", self._rest)
        page.route_web_socket("**/ws/dashboard/", self._socket)

    # --- REST --------------------------------------------------------------------------------
    def _rest(self, route) -> None:
        request = route.request
        path = request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        path = "/" + path
        body: Any
        status = 200
        if path == "/api/auth/refresh/":
            self.refreshes += 1
            body = {"access": self._issue(), "refresh": fake_jwt(86400)}
        elif path == "/api/auth/login/":
            body = {
                "access": self._issue(),
                "refresh": fake_jwt(86400),
                "user": {
                    "id": 1,
                    "email": "nurse@example.org",
                    "role": self.role,
                    "first_name": "Asha",
                    "last_name": "Rao",
                    "must_change_password": self.must_change_password,
                },
            }
        elif path == "/api/auth/logout/":
            status, body = 205, {}
        elif path == "/api/wards/":
            body = {
                "count": 1,
                "next": None,
                "previous": None,
                "results": [{"id": self.ward_id, "place": 1, "name": "Labour ward"}],
            }
        elif path == "/api/places/":
            body = {
                "count": 1,
                "next": None,
                "previous": None,
                "results": [{"id": 1, "name": "City Hospital", "kind": "hospital"}],
            }
        elif path == f"/api/wards/{self.ward_id}/":
            body = {"id": self.ward_id, "place": 1, "name": "Labour ward"}
        elif path == "/api/places/1/":
            body = {"id": 1, "name": "City Hospital", "kind": "hospital"}
        elif path.startswith("/api/patients/") and path.endswith("/alarm-limits/"):
            body = {
                "patient": int(path.split("/")[3]),
                "monitoring_profile": "adult",
                "limits": [
                    {
                        "metric": "heart_rate",
                        "brady_high": 49,
                        "tachy_high": 131,
                        "source": "default",
                    }
                ],
            }
        elif path.startswith("/api/patients/") and path.endswith("/notes/"):
            body = {"next": None, "previous": None, "results": self.notes}
        elif path.startswith("/api/patients/"):
            patient = next(p for p in self.patients if p["id"] == int(path.split("/")[3]))
            body = {
                **{k: patient[k] for k in ("id", "name", "bed", "monitoring_profile")},
                "mrn": "MRN1",
                "sex": "F",
                "date_of_birth": None,
                "ward": self.ward_id,
                "place": 1,
            }
        elif path == "/api/alerts/":
            body = {
                "count": len(self.alerts),
                "next": None,
                "previous": None,
                "results": list(self.alerts.values()),
            }
        elif path == "/api/devices/":
            body = {"count": 0, "next": None, "previous": None, "results": []}
        elif path.startswith("/api/records/"):
            body = {"next": None, "previous": None, "results": []}
        elif path.startswith(f"/api/wards/{self.ward_id}/alarm-audio/"):
            status, body = self._audio(path.rsplit("alarm-audio/", 1)[1], request)
        elif path.startswith("/api/alerts/") and path.endswith("/acknowledge/"):
            alert_id = int(path.split("/")[3])
            self.acknowledged.append(alert_id)
            alert = {
                **self.alerts[alert_id],
                "state": "acknowledged",
                "acknowledged_at": iso(datetime.now(UTC)),
            }
            self.alerts[alert_id] = alert
            body = alert
        else:
            status, body = (
                404,
                {"error": {"code": "not_found", "message": "Not found.", "details": None}},
            )
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def _audio(self, action: str, request) -> tuple[int, dict[str, Any]]:
        """The ward's alarm audio, as alerts/audio_views.py answers it."""
        sent = json.loads(request.post_data or "{}") if request.method == "POST" else {}
        self.audio_calls.append((action or "get", sent))
        if action == "pause/":
            mode = sent.get("mode", "paused")
            seconds = None if mode == "off" else self.pause_seconds
            self.audio = {
                "state": mode,
                "pause": {
                    "id": len(self.audio_calls),
                    "mode": mode,
                    "by": {"id": 1, "name": "Asha Rao"},
                    "started_at": iso(datetime.now(UTC)),
                    "ends_at": None,
                    "remaining_seconds": seconds,
                },
            }
            return 201, self.audio_state()
        if action == "resume/":
            self.audio = {"state": "sounding", "pause": None}
        return 200, self.audio_state()

    def audio_state(self) -> dict[str, Any]:
        return {"ward": self.ward_id, "pause_seconds": self.pause_seconds, **self.audio}

    def _issue(self) -> str:
        token = fake_jwt(self.access_lifetime)
        self.issued.append(token)
        return token

    # --- WebSocket ---------------------------------------------------------------------------
    def _socket(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self._on_frame(ws, message))

    def _on_frame(self, ws, message) -> None:
        frame = json.loads(message)
        self.received.append(frame)
        if frame["type"] == "auth":
            ws.send(json.dumps({"type": "auth.ok", "user": {"id": 1}}))
        elif frame["type"] == "subscribe" and frame.get("ward") == self.ward_id:
            ws.send(
                json.dumps({"type": "snapshot", "ward": self.ward_id, "patients": self.patients})
            )
        elif frame["type"] == "subscribe" and "patient" in frame:
            patients = [p for p in self.patients if p["id"] == frame["patient"]]
            ws.send(
                json.dumps({"type": "snapshot", "patient": frame["patient"], "patients": patients})
            )
        elif frame["type"] == "subscribe":
            ws.send(
                json.dumps(
                    {
                        "type": "error",
                        "error": {
                            "code": "forbidden",
                            "message": "You do not have access to this ward.",
                            "details": None,
                        },
                    }
                )
            )
        elif frame["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))

    @property
    def socket(self):
        return self.sockets[-1]

    def push(self, frame: dict[str, Any]) -> None:
        self.socket.send(json.dumps(frame))

    def readings(self, bpm_of, at: datetime | None = None) -> dict[str, Any]:
        at = at or datetime.now(UTC)
        items = []
        for p in self.patients:
            self.seq += 1
            items.append(
                {
                    "patient": p["id"],
                    "device": p["device"]["id"],
                    "metric": "heart_rate",
                    "bpm": bpm_of(p),
                    "recorded_at": iso(at),
                    "seq": self.seq,
                }
            )
            if p["monitoring_profile"] == "obstetric":
                items.append(
                    {
                        "patient": p["id"],
                        "device": p["device"]["id"],
                        "metric": "fetal_heart_rate",
                        "bpm": 140,
                        "recorded_at": iso(at),
                        "seq": self.seq,
                    }
                )
        return {"type": "readings", "items": items}

    def alert(
        self,
        alert_id: int,
        patient_id: int,
        priority: str,
        state: str = "active",
        kind: str = "bradycardia",
    ) -> dict[str, Any]:
        alert = {
            "id": alert_id,
            "patient": patient_id,
            "device": 100 + patient_id,
            "kind": kind,
            "priority": priority,
            "state": state,
            "message": f"{kind.replace('_', ' ').capitalize()}",
            "raised_at": iso(datetime.now(UTC) - timedelta(seconds=5)),
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
        }
        self.alerts[alert_id] = alert
        return {"type": "alert", "alert": alert}
