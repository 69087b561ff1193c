"""Both ingest paths queue every new reading for alarm evaluation in the transaction that
stores it: the readings stream holds exactly what was stored. When the stream cannot take them
(Redis away) they are stored and acked all the same, deferred to the backlog in the same
transaction, and appended to the stream, in order, before anything newer once Redis answers."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from monitoring.models import Reading, StreamBacklog, StreamReplay
from monitoring.readings import reading_parse, readings_store
from monitoring.services import readings_ingest
from monitoring.stream import backlog
from monitoring.stream import entries as stream
from testing.clients import device_client
from testing.factories import ingest_target
from testing.ws import device_connect, reading, receive_type

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def queued(patient_id: int) -> list[tuple[int | None, int]]:
    """``(seq, reading id)`` of every entry of the patient's partition, oldest first."""
    client = stream.redis_client()
    entries = cast(
        "list[Any]", client.xrange(stream.partition_key(stream.partition_of(patient_id)))
    )
    readings = [r for _, fields in entries for r in stream.entry_readings(fields)]
    return [(r.seq, r.id) for r in readings if r.patient_id == patient_id]


def _broken_append(*_, **__):
    raise RedisConnectionError("Redis is down")


async def test_websocket_readings_are_queued_once_when_stored(device):
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    await receive_type(ws, "ack")
    ids = await sync_to_async(
        lambda: list(Reading.objects.order_by("seq").values_list("id", flat=True))
    )()
    assert await sync_to_async(queued)(device.patient_id) == [(1, ids[0]), (2, ids[1])]
    # A duplicate is acked again but is not new: it is not queued a second time.
    await ws.send_json_to({"type": "reading", **reading(2)})
    await receive_type(ws, "ack")
    assert len(await sync_to_async(queued)(device.patient_id)) == 2
    await ws.disconnect()


def _deferred() -> list[int | None]:
    return [entry["seq"] or None for row in StreamBacklog.objects.all() for entry in row.entries]


async def test_a_stream_outage_still_stores_and_acks_and_the_backlog_goes_first_after(
    device, monkeypatch
):
    appends: list[int] = []

    def broken_append(entries):
        appends.append(len(entries))
        _broken_append()

    monkeypatch.setattr(backlog, "stream_entries_append", broken_append)
    ws = await device_connect(device.token)
    await ws.send_json_to({"type": "readings", "items": [reading(1), reading(2)]})
    assert await receive_type(ws, "ack") == {"type": "ack", "seqs": [1, 2]}
    await ws.send_json_to({"type": "reading", **reading(3)})
    assert await receive_type(ws, "ack") == {"type": "ack", "seqs": [3]}
    assert await sync_to_async(Reading.objects.count)() == 3
    assert await sync_to_async(_deferred)() == [1, 2, 3]
    assert await sync_to_async(queued)(device.patient_id) == []
    # The breaker: after the first failed append the flush of reading 3 did not try Redis.
    assert appends == [2]

    # Still away: a replay pass appends nothing and the next reading is deferred too.
    assert await sync_to_async(backlog.stream_backlog_replay_due)() == 0
    await ws.send_json_to({"type": "reading", **reading(4)})
    await receive_type(ws, "ack")
    assert await sync_to_async(_deferred)() == [1, 2, 3, 4]

    monkeypatch.undo()  # Redis answers again: the replayer's pass appends the backlog
    assert await sync_to_async(backlog.stream_backlog_replay_due)() == 4
    await ws.send_json_to({"type": "reading", **reading(5)})
    await receive_type(ws, "ack")
    ids = await sync_to_async(
        lambda: list(Reading.objects.order_by("seq").values_list("id", flat=True))
    )()
    # The deferred readings first, then the new one: in order, each once, none left behind.
    assert await sync_to_async(queued)(device.patient_id) == list(
        zip([1, 2, 3, 4, 5], ids, strict=True)
    )
    assert await sync_to_async(_deferred)() == [] and backlog._deferral.active is False
    await ws.disconnect()


def test_rest_readings_are_queued_in_the_storing_transaction(device):
    stored = readings_ingest(
        readings=[
            reading_parse(reading(s), target=ingest_target(device), require_seq=True)
            for s in (1, 2)
        ]
    )
    assert queued(device.patient_id) == [(r.seq, r.id) for r in stored]


def test_rest_readings_are_stored_during_a_stream_outage_and_queued_after(device, monkeypatch):
    monkeypatch.setattr(backlog, "stream_entries_append", _broken_append)
    response = device_client(device.token).post("/api/records/", reading(1), format="json")
    assert response.status_code == 201, response.content
    assert Reading.objects.count() == 1
    assert _deferred() == [1] and queued(device.patient_id) == []

    monkeypatch.undo()
    assert backlog.stream_backlog_replay_due() == 1
    assert [seq for seq, _ in queued(device.patient_id)] == [1]
    assert _deferred() == []
    # The next reading finds the backlog empty: the breaker closes, it goes to the stream.
    response = device_client(device.token).post("/api/records/", reading(2), format="json")
    assert response.status_code == 201, response.content
    assert [seq for seq, _ in queued(device.patient_id)] == [1, 2]
    assert _deferred() == [] and backlog._deferral.active is False


def test_a_replay_notes_per_partition_what_it_appended_late_and_forgets_old_notes(
    device, monkeypatch
):
    """The alarm evaluators' catch-up goes back to these notes if the stream loses the
    late-appended readings again (``alerts.checkpoints``)."""
    stale = StreamReplay.objects.create(
        appended_at=timezone.now() - timedelta(seconds=backlog.REPLAYS_KEPT_SECONDS + 1),
        partition=0,
        received_from=timezone.now(),
        received_until=timezone.now(),
    )
    monkeypatch.setattr(backlog, "stream_entries_append", _broken_append)
    for seq in (1, 2):
        response = device_client(device.token).post("/api/records/", reading(seq), format="json")
        assert response.status_code == 201, response.content
    monkeypatch.undo()
    assert backlog.stream_backlog_replay_due() == 2
    received = sorted(Reading.objects.values_list("received_at", flat=True))
    (note,) = StreamReplay.objects.all()
    assert note.pk != stale.pk
    assert note.partition == stream.partition_of(device.patient_id)
    assert (note.received_from, note.received_until) == (received[0], received[-1])


def test_the_breaker_stays_open_for_readings_deferred_after_the_replay(device, monkeypatch):
    """A replay that emptied the backlog does not close the breaker over rows deferred since:
    those go into the stream first, at the next pass."""
    target = ingest_target(device)
    monkeypatch.setattr(backlog, "stream_entries_append", _broken_append)
    readings_ingest(readings=[reading_parse(reading(1), target=target, require_seq=True)])
    monkeypatch.undo()
    assert backlog.stream_backlog_replay_due() == 1
    # Reading 2 deferred after the replay looked (another thread's flush, say).
    backlog.stream_backlog_add(
        readings_store(readings=[reading_parse(reading(2), target=target, require_seq=True)])
    )
    readings_ingest(readings=[reading_parse(reading(3), target=target, require_seq=True)])
    assert _deferred() == [2, 3] and backlog._deferral.active is True
    assert backlog.stream_backlog_replay_due() == 2
    readings_ingest(readings=[reading_parse(reading(4), target=target, require_seq=True)])
    assert [seq for seq, _ in queued(device.patient_id)] == [1, 2, 3, 4]
    assert _deferred() == [] and backlog._deferral.active is False


def test_a_backlog_left_behind_goes_into_the_stream_before_the_next_reading(device, monkeypatch):
    target = ingest_target(device)
    monkeypatch.setattr(backlog, "stream_entries_append", _broken_append)
    readings_ingest(readings=[reading_parse(reading(1), target=target, require_seq=True)])
    monkeypatch.undo()
    backlog.deferral_reset(replayer=False)  # a new process (the one that deferred 1 died)
    readings_ingest(readings=[reading_parse(reading(2), target=target, require_seq=True)])
    assert queued(device.patient_id) == [] and _deferred() == [1, 2]  # 2 does not overtake 1
    assert backlog.stream_backlog_replay_due() == 2
    readings_ingest(readings=[reading_parse(reading(3), target=target, require_seq=True)])
    assert [seq for seq, _ in queued(device.patient_id)] == [1, 2, 3]
    assert _deferred() == [] and backlog._deferral.active is False


def test_the_replayer_thread_replays_once_redis_answers_and_the_breaker_closes(device, monkeypatch):
    """The thread the breaker starts (not the storing thread) brings the backlog into the
    stream once Redis answers; the next reading is appended directly."""
    target = ingest_target(device)
    backlog.deferral_reset(active=False, replayer=True)
    monkeypatch.setattr(backlog, "stream_entries_append", _broken_append)
    readings_ingest(readings=[reading_parse(reading(1), target=target, require_seq=True)])
    assert backlog._deferral.thread is not None  # started by the failed append
    monkeypatch.undo()
    backlog.replayer_wake()
    deadline = time.monotonic() + 20
    while _deferred() or not backlog._deferral.drained.is_set():
        assert time.monotonic() < deadline, "the replayer did not replay"
        time.sleep(0.05)
    readings_ingest(readings=[reading_parse(reading(2), target=target, require_seq=True)])
    assert [seq for seq, _ in queued(device.patient_id)] == [1, 2]
    assert backlog._deferral.active is False
