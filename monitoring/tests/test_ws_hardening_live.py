"""Against a real Daphne (``-m live``): a frame above the server's limit is closed with 1009
(not a dropped socket). A PostgreSQL outage under a real Daphne, with the devices told and
everything stored once the database is back: test_database_outage_live.py."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from monitoring.tests.test_ws_live import seed
from testing.live import live_device
from testing.ws import reading

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]


@pytest.mark.frames_malformed
async def test_frames_too_large_get_an_error_frame_or_close_1009(live_env, daphne_factory):
    data = await asyncio.to_thread(seed, live_env)
    server = await asyncio.to_thread(daphne_factory)
    ws = await live_device(server.url("/ws/devices/"), data["devices"][0]["token"])
    # Above WS_MAX_FRAME_BYTES (256 KiB), below Daphne's 1 MiB: an error frame, still open.
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 300_000}))
    assert json.loads(await ws.recv())["error"]["code"] == "frame_too_large"
    await ws.send(json.dumps({"type": "reading", **reading(1)}))
    assert json.loads(await ws.recv()) == {"type": "ack", "seqs": [1]}
    # 2 MB: Daphne refuses it with a close frame the device can read.
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 2_000_000}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "the TCP connection was dropped without a close frame"
    assert closed.value.rcvd.code == 1009
