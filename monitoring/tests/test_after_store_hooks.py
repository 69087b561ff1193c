from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async

from monitoring import pipeline
from monitoring.ingest import Target, reading_parse, readings_ingest
from monitoring.models import Reading
from testing.ws import device_connect, reading, receive_type

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class Recorder:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[tuple[list[int], str]] = []
        self.delay = delay
        self.fail = fail
        self.called = threading.Event()

    def __call__(self, *, stored) -> None:
        time.sleep(self.delay)
        self.calls.append(([r.seq for r in stored], threading.current_thread().name))
        self.called.set()
        if self.fail:
            raise RuntimeError("evaluator bug")


@pytest.fixture
def hook(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(pipeline, "AFTER_STORE_HOOKS", [recorder])
    return recorder


def _target(device) -> Target:
    p = device.patient
    return Target(
        patient_id=p.id,
        place_id=p.place_id,
        ward_id=p.ward_id,
        profile=p.monitoring_profile,
        device_id=device.id,
    )


async def test_websocket_batches_reach_the_hook_off_the_event_loop(device, hook):
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    await receive_type(ws, "ack")
    assert await asyncio.to_thread(hook.called.wait, 5)
    seqs, thread = hook.calls[0]
    assert seqs == [1, 2] and thread.startswith("ingest-hooks")
    # A duplicate is acked but is not new: no second evaluation.
    await ws.send_json_to({"type": "reading", **reading(2)})
    await receive_type(ws, "ack")
    await asyncio.sleep(0.3)
    assert len(hook.calls) == 1
    await ws.disconnect()


async def test_slow_or_failing_hook_never_delays_acks(device, monkeypatch):
    slow = Recorder(delay=2.0, fail=True)
    monkeypatch.setattr(pipeline, "AFTER_STORE_HOOKS", [slow])
    ws = await device_connect(device.token)
    started = time.monotonic()
    for seq in range(1, 6):
        await ws.send_json_to({"type": "reading", **reading(seq)})
    acked: set[int] = set()
    while len(acked) < 5:
        acked.update((await receive_type(ws, "ack"))["seqs"])
    assert time.monotonic() - started < 1.5
    # Batches that queued behind the slow call were merged into the next one.
    await asyncio.to_thread(slow.called.wait, 5)
    await pipeline.batcher_get().drain()
    assert sum(len(seqs) for seqs, _ in slow.calls) == 5 and len(slow.calls) <= 3
    await ws.disconnect()


def test_rest_path_runs_the_hook_and_survives_its_failure(device, monkeypatch):
    failing = Recorder(fail=True)
    monkeypatch.setattr(pipeline, "AFTER_STORE_HOOKS", [failing])
    target = _target(device)
    stored = readings_ingest(
        readings=[reading_parse(reading(s), target=target, require_seq=True) for s in (1, 2)]
    )
    assert [r.seq for r in stored] == [1, 2]
    assert failing.calls[0][0] == [1, 2]
    assert Reading.objects.count() == 2  # a failing evaluator does not undo the readings


def test_missing_hook_module_is_skipped(device, monkeypatch):
    monkeypatch.setattr(pipeline, "AFTER_STORE_HOOKS", ["clinical.not_there.evaluate"])
    stored = readings_ingest(
        readings=[reading_parse(reading(1), target=_target(device), require_seq=True)]
    )
    assert len(stored) == 1


async def test_hook_sees_rows_already_committed(device, monkeypatch):
    seen: list[int] = []

    def count_rows(*, stored) -> None:
        seen.append(Reading.objects.filter(id__in=[r.id for r in stored]).count())

    monkeypatch.setattr(pipeline, "AFTER_STORE_HOOKS", [count_rows])
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": [reading(1), reading(2), reading(3)]})
    await receive_type(ws, "ack")
    await pipeline.batcher_get().drain()
    assert seen == [3]
    assert await sync_to_async(Reading.objects.count)() == 3
    await ws.disconnect()
