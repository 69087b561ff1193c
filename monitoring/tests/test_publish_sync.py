"""Publishing to groups from synchronous code: threads, fresh event loops, a Celery worker."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import pytest
from channels.layers import get_channel_layer

from monitoring.live.publish import live_publish
from testing.processes import CeleryWorker

pytestmark = pytest.mark.timeout(120)


async def _listen(group: str):
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return layer, channel


async def _drain(layer, channel: str, expected: int, wait: float = 20) -> list[int]:
    got: list[int] = []
    async with asyncio.timeout(wait):
        while len(got) < expected:
            got.append((await layer.receive(channel))["n"])
    return got


async def test_sync_publish_from_many_threads_and_fresh_loops():
    group = f"test.{uuid.uuid4().hex}"
    layer, channel = await _listen(group)

    def from_thread(offset: int) -> None:
        for n in range(offset, offset + 10):
            live_publish([(group, {"type": "probe", "n": n})], raise_errors=True)

    def from_fresh_loops(offset: int) -> None:
        # Code that runs its own short-lived loops (what async_to_sync does per call) and
        # publishes between them must not hit "Event loop is closed".
        for n in range(offset, offset + 10):
            asyncio.run(asyncio.sleep(0))
            live_publish([(group, {"type": "probe", "n": n})], raise_errors=True)

    threads = [threading.Thread(target=from_thread, args=(i * 100,)) for i in range(4)]
    threads += [threading.Thread(target=from_fresh_loops, args=(1000 + i * 100,)) for i in range(2)]
    for t in threads:
        t.start()

    def join_all() -> None:
        for t in threads:
            t.join()

    await asyncio.to_thread(join_all)
    got = await _drain(layer, channel, 60)
    assert len(set(got)) == 60


def test_sync_publish_from_sync_code_twice_in_a_row():
    # The plain synchronous case (a REST view): no loop in this thread at all.
    group = f"test.{uuid.uuid4().hex}"
    for n in range(3):
        live_publish([(group, {"type": "probe", "n": n})], raise_errors=True)


@pytest.mark.live
async def test_publish_from_a_real_celery_worker(tmp_path):
    group = f"test.{uuid.uuid4().hex}"
    layer, channel = await _listen(group)
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    worker = await asyncio.to_thread(
        CeleryWorker,
        env,
        tmp_path / "worker.log",
        "-P",
        "prefork",
        "-Q",
        queue,
        "-I",
        "monitoring.tests.celery_probe",
        "--without-gossip",
        "--without-mingle",
    )
    try:
        from config.celery import app

        # Several tasks in the same worker child: each publishes several times.
        for start in range(0, 40, 10):
            await asyncio.to_thread(
                app.send_task,
                "monitoring.tests.publish_probe",
                args=(group, start, 10),
                queue=queue,
            )
        got = await _drain(layer, channel, 40, wait=60)
        assert sorted(got) == list(range(40))
    finally:
        await asyncio.to_thread(worker.stop)
    text = (tmp_path / "worker.log").read_text()
    assert "Event loop is closed" not in text and "failed" not in text.lower(), text[-2000:]


@pytest.mark.django_db(transaction=True)
async def test_capacity_small_layer_burst_loses_nothing_thanks_to_batching(ward, settings):
    """With batching, a burst of 2000 readings from 20 devices is a handful of group messages,
    far below even a tiny channel capacity; a dashboard gets every reading."""
    if "core" in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
        layers["default"]["CONFIG"] = {**layers["default"]["CONFIG"], "capacity": 20}
        settings.CHANNEL_LAYERS = layers  # channels rebuilds its layer on this change
    from asgiref.sync import sync_to_async

    from testing.factories import DeviceFactory, PatientFactory, UserFactory
    from testing.ws import dashboard_connect, device_connect, reading, subscribe

    user = await sync_to_async(UserFactory)(places=[ward.place])
    devices = [
        await sync_to_async(DeviceFactory)(patient=await sync_to_async(PatientFactory)(ward=ward))
        for _ in range(20)
    ]
    watcher = await dashboard_connect(user)
    await subscribe(watcher, ward=ward.id)
    sockets = [await device_connect(d.token) for d in devices]
    await asyncio.gather(
        *(
            ws.send_json_to({"type": "readings", "items": [reading(s) for s in range(1, 101)]})
            for ws in sockets
        )
    )
    seen = 0
    frames = 0
    async with asyncio.timeout(30):
        while seen < 2000:
            frame = await watcher.receive_json_from(timeout=10)
            if frame["type"] == "readings":
                frames += 1
                seen += len(frame["items"])
    assert seen == 2000
    assert frames <= 40  # one message per ward per flush, not one per reading
    for ws in [watcher, *sockets]:
        await ws.disconnect()
