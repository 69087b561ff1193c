"""A logout ends its own session on open dashboards too: real Daphne, real WebSocket clients.
The dashboard of the session logged out is closed with 4401 at once (not at the session
check's next turn); another login of the same person stays open."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from testing.processes import django_run

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SEED = """
from testing.factories import DEFAULT_PASSWORD, UserFactory, WardFactory
ward = WardFactory()
nurse = UserFactory(places=[ward.place])
result = {"email": nurse.email, "password": DEFAULT_PASSWORD, "ward": ward.id}
"""


def post(base: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        text = response.read().decode()
        return int(response.status), json.loads(text) if text else None


async def test_a_logout_closes_the_dashboards_of_its_session_only(daphne_factory, live_env):
    from testing.live import live_dashboard

    # Only the announced end may close it: the periodic session check is an hour away.
    live_env["DASHBOARD_SESSION_CHECK_SECONDS"] = "3600"
    seed = django_run(live_env, SEED)
    server = daphne_factory()
    base = server.url("", scheme="http")
    credentials = {"email": seed["email"], "password": seed["password"]}
    _, first = await asyncio.to_thread(post, base, "/api/auth/login/", credentials)
    _, second = await asyncio.to_thread(post, base, "/api/auth/login/", credentials)
    url = server.url("/ws/dashboard/")
    ended = await live_dashboard(url, first["access"], seed["ward"])
    kept = await live_dashboard(url, second["access"], seed["ward"])

    status, _ = await asyncio.to_thread(
        post, base, "/api/auth/logout/", {"refresh": first["refresh"]}
    )
    assert status == 205
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ended.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    await kept.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(kept.recv(), 5)) == {"type": "pong"}
    await kept.close()
