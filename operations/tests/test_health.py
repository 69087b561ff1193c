"""/healthz and /readyz answer as the contract says, against the real database and Redis, and
readiness follows Redis (away: degraded, still ready), the readings deferred while it was away,
and the alarm evaluators' backlog."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from config.net import free_port
from monitoring.readings import StoredReading
from monitoring.stream import entries as stream
from monitoring.stream.backlog import stream_backlog_add, stream_backlog_replay
from testing.factories import StoredReadingFactory

pytestmark = pytest.mark.django_db

CHECKS = {"database", "redis", "channel_layer", "alarm_evaluator", "stream_backlog", "deliveries"}


def _stored(patient_id: int, seq: int) -> StoredReading:
    return StoredReadingFactory(id=seq, patient_id=patient_id, seq=seq)


def test_liveness_answers_ok_without_credentials(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_reports_every_check_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == dict.fromkeys(CHECKS, "ok")


def test_readiness_is_degraded_while_redis_is_unreachable_and_ok_again_after(client, settings):
    reachable = settings.REDIS_URL
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REDIS_URL = dead
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }
    # Readings are still stored and acked without Redis: ready (200), degraded, and why.
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["channel_layer"].startswith("error")
    assert body["checks"]["alarm_evaluator"] == "skipped"
    assert body["checks"]["stream_backlog"] == "ok"
    assert body["degraded"] == ["alarm_evaluator", "channel_layer", "redis"]

    settings.REDIS_URL = reachable
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [reachable]},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_readiness_names_readings_deferred_while_redis_was_away(client, device):
    stream_backlog_add([_stored(device.patient_id, seq) for seq in (1, 2)])
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["degraded"] == ["stream_backlog"]
    assert body["checks"]["stream_backlog"] == (
        "deferred: 2 stored readings wait to be queued for alarm evaluation"
    )
    assert stream_backlog_replay() == 2
    assert client.get("/readyz").json()["status"] == "ok"


def test_a_database_outage_is_unavailable_even_with_redis_up(client, monkeypatch):
    from operations import health

    def broken() -> str:
        raise DatabaseError("the database is down")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "error: DatabaseError"
    assert body["checks"]["stream_backlog"] == "skipped"


def test_readiness_judges_evaluation_lag_in_seconds(client, settings, alarms_drain):
    settings.READY_EVALUATION_LAG_SECONDS = 30
    client_ = stream.redis_client()
    appended_ms = stream.server_ms(client_) - 45_000  # appended 45 s ago, by Redis's clock
    for seq in (1, 2, 3):
        client_.xadd(
            stream.partition_key(stream.partition_of(1)),
            stream.reading_encode(_stored(1, seq)),  # type: ignore[arg-type]
            id=f"{appended_ms}-{seq}",
        )
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["alarm_evaluator"]
    assert check.startswith("behind: readings wait 4") and check.endswith("(3 stream entries)"), (
        check
    )

    settings.READY_EVALUATION_LAG_SECONDS = 60  # younger than the threshold: ready
    assert client.get("/readyz").status_code == 200
    settings.READY_EVALUATION_LAG_SECONDS = 30
    alarms_drain()  # an evaluator catches up
    assert client.get("/readyz").status_code == 200


def test_probes_only_answer_get(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
