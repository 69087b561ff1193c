"""The dashboard channel's sign-in and session: the auth frame and its refusals (4401), what a
subscription outside the user's places is answered, the session's end at token expiry or
deactivation, re-authentication in band."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from testing.factories import (
    PatientFactory,
    WardFactory,
)
from testing.ws import (
    dashboard_connect,
    expect_close,
    subscribe,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_no_auth_frame_in_time_closes_4401(settings):
    settings.DASHBOARD_AUTH_TIMEOUT = 0.3
    communicator = await dashboard_connect()
    assert await expect_close(communicator) == 4401


async def test_first_frame_other_than_auth_closes_4401(nurse):
    communicator = await dashboard_connect()
    await communicator.send_json_to({"type": "ping"})
    assert await expect_close(communicator) == 4401


@pytest.mark.frames_malformed
@pytest.mark.parametrize("token", ["garbage", "", None, 42])
async def test_invalid_token_closes_4401(nurse, token):
    communicator = await dashboard_connect()
    await communicator.send_json_to({"type": "auth", "token": token})
    assert await expect_close(communicator) == 4401


async def test_expired_or_inactive_user_token_closes_4401(nurse):
    expired = AccessToken.for_user(nurse)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    communicator = await dashboard_connect()
    await communicator.send_json_to({"type": "auth", "token": str(expired)})
    assert await expect_close(communicator) == 4401

    token = str(AccessToken.for_user(nurse))
    await sync_to_async(User.objects.filter(id=nurse.id).update)(is_active=False)
    communicator = await dashboard_connect()
    await communicator.send_json_to({"type": "auth", "token": token})
    assert await expect_close(communicator) == 4401


async def test_auth_ok_carries_the_user(nurse, place):
    communicator = await dashboard_connect()
    await communicator.send_json_to({"type": "auth", "token": str(AccessToken.for_user(nurse))})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "auth.ok"
    assert reply["user"] == {
        "id": nurse.id,
        "email": nurse.email,
        "first_name": nurse.first_name,
        "last_name": nurse.last_name,
        "role": "nurse",
        "places": [place.id],
    }
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.frames_malformed
async def test_subscribe_outside_places_answers_like_a_missing_one(nurse):
    other_ward = await sync_to_async(WardFactory)()
    other_patient = await sync_to_async(PatientFactory)(ward=other_ward)
    communicator = await dashboard_connect(nurse)
    # Another place's ward and patient are answered exactly like ids that do not exist: the
    # frame must not reveal that they exist.
    for kind, existing, missing in (
        ("ward", other_ward.id, 999999),
        ("patient", other_patient.id, 999998),
    ):
        outside = await subscribe(communicator, **{kind: existing})
        absent = await subscribe(communicator, **{kind: missing})
        assert outside["type"] == absent["type"] == "error"
        assert outside["error"] == absent["error"]
        assert outside["error"]["code"] == "not_found"
        assert outside.keys() == absent.keys() and outside[kind] == existing
    for bad in ({"ward": "1"}, {"ward": 1, "patient": 2}, {}, {"ward": True}):
        error = await subscribe(communicator, **bad)
        assert error["error"]["code"] == "validation_error"
    await communicator.send_json_to({"type": "self-destruct"})
    assert (await communicator.receive_json_from(timeout=5))["error"]["code"] == "unknown_type"
    await communicator.disconnect()


async def test_deactivated_user_is_disconnected(nurse, settings):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 0.2
    watcher = await dashboard_connect(nurse)
    await sync_to_async(User.objects.filter(id=nurse.id).update)(is_active=False)
    assert await expect_close(watcher) == 4401


async def test_session_ends_at_token_expiry_unless_reauthenticated(nurse, settings):
    settings.DASHBOARD_SESSION_CHECK_SECONDS = 30
    short = AccessToken.for_user(nurse)
    short.set_exp(lifetime=timedelta(seconds=2))
    watcher = await dashboard_connect(token=str(short))
    assert await expect_close(watcher, wait=5) == 4401

    short = AccessToken.for_user(nurse)
    short.set_exp(lifetime=timedelta(seconds=2))
    watcher = await dashboard_connect(token=str(short))
    await watcher.send_json_to({"type": "auth", "token": str(AccessToken.for_user(nurse))})
    assert (await watcher.receive_json_from(timeout=5))["type"] == "auth.ok"
    await asyncio.sleep(2.5)
    await watcher.send_json_to({"type": "ping"})
    assert await watcher.receive_json_from(timeout=5) == {"type": "pong"}
    await watcher.disconnect()


async def test_reauth_as_another_user_closes(nurse, doctor):
    watcher = await dashboard_connect(nurse)
    await watcher.send_json_to({"type": "auth", "token": str(AccessToken.for_user(doctor))})
    assert await expect_close(watcher) == 4401


async def test_deactivating_a_user_through_the_service_closes_their_dashboard_at_once(
    nurse, admin_user, settings
):
    from accounts.services import user_update

    settings.DASHBOARD_SESSION_CHECK_SECONDS = 3600  # only the announced change can close it
    watcher = await dashboard_connect(nurse)
    await sync_to_async(user_update)(user=nurse, actor=admin_user, is_active=False)
    assert await expect_close(watcher, wait=3) == 4401
