"""/healthz and /readyz answer as the contract says, against the real database and Redis, and
readiness follows Redis and the alarm evaluators' backlog."""

from __future__ import annotations

import pytest
from django.utils import timezone

from config.net import free_port
from monitoring.ingest import StoredReading
from monitoring.realtime.stream import readings_stream_append

pytestmark = pytest.mark.django_db

CHECKS = {"database", "redis", "channel_layer", "alarm_evaluator"}


def _stored(patient_id: int, seq: int) -> StoredReading:
    now = timezone.now()
    return StoredReading(
        id=seq,
        patient_id=patient_id,
        device_id=None,
        ward_id=None,
        metric="heart_rate",
        bpm=80,
        recorded_at=now,
        received_at=now,
        seq=seq,
    )


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


def test_readiness_is_503_while_redis_is_unreachable_and_200_again_after(client, settings):
    reachable = settings.REDIS_URL
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.REDIS_URL = dead
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert body["checks"]["channel_layer"].startswith("error")
    assert body["checks"]["alarm_evaluator"] == "skipped"

    settings.REDIS_URL = reachable
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [reachable]},
        }
    }
    assert client.get("/readyz").status_code == 200


def test_readiness_is_503_while_readings_wait_too_long_for_evaluation(
    client, settings, alarms_drain
):
    settings.READY_EVALUATOR_MAX_BEHIND = 2
    readings_stream_append(stored=[_stored(1, seq) for seq in (1, 2, 3)])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["alarm_evaluator"] == "behind: 3 readings wait for evaluation"

    alarms_drain()  # an evaluator catches up
    assert client.get("/readyz").status_code == 200


def test_probes_only_answer_get(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
