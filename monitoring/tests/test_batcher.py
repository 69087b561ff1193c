"""The ingest batcher's pipeline: group commit, and releases that overlap the next store."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.utils import timezone

from monitoring.ingest import batcher
from monitoring.readings import ReadingIn
from testing.factories import ReadingInFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class Listener:
    """A device connection as the batcher sees it: told after each flush what was stored."""

    def __init__(self, name: str, told: list[str], hold: asyncio.Event | None = None) -> None:
        self.name, self.told, self.hold = name, told, hold

    async def readings_stored(self, seqs, refused):
        if self.hold is not None:
            await self.hold.wait()
        self.told.append(f"{self.name} stored {seqs}")

    async def readings_failed(self, seqs):
        self.told.append(f"{self.name} failed {seqs}")


class HeldStores:
    """Holds each store inside its transaction until the test lets it go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered: list[threading.Event] = [threading.Event() for _ in range(4)]
        self.release: list[threading.Event] = [threading.Event() for _ in range(4)]
        self.count = 0
        real_queue = batcher.readings_queue

        def held_queue(stored):
            index = self.count
            self.count += 1
            error = real_queue(stored)
            self.entered[index].set()
            self.release[index].wait(20)
            return error

        monkeypatch.setattr(batcher, "readings_queue", held_queue)

    async def wait_entered(self, index: int) -> None:
        assert await asyncio.to_thread(self.entered[index].wait, 20), f"store {index} not begun"


def _readings(device, *seqs: int) -> list[ReadingIn]:
    now = timezone.now()
    return [ReadingInFactory(device=device, recorded_at=now, seq=seq) for seq in seqs]


async def test_the_next_flush_stores_while_the_previous_one_is_released(device, monkeypatch):
    """A flush's release (broadcast, acks) does not hold up the next store, and releases keep
    the order of their stores even when the later store is done first."""
    stores = HeldStores(monkeypatch)
    told: list[str] = []
    slow_release = asyncio.Event()
    ingest = batcher.batcher_get()
    wards: dict[int, int | None] = {device.patient_id: None}
    ingest.submit_for(Listener("first", told, hold=slow_release), _readings(device, 1), wards)
    await stores.wait_entered(0)
    ingest.submit_for(Listener("second", told), _readings(device, 2), wards)
    stores.release[0].set()  # the first flush commits; its release now waits on the listener
    await stores.wait_entered(1)  # ... while the second flush is already storing
    stores.release[1].set()
    third = ingest.submit(_readings(device, 3), wards)  # a third flush, behind both
    await stores.wait_entered(2)
    stores.release[2].set()
    await asyncio.sleep(0)  # (one turn of the loop: the later releases must not have run)
    assert told == [] and not third.done()
    slow_release.set()
    assert await asyncio.wait_for(third, 20) == []
    assert told == ["first stored [1]", "second stored [2]"]


async def test_readings_queued_behind_a_long_store_are_flushed_when_it_ends(
    device, monkeypatch, settings
):
    """Group commit: time spent waiting behind a running store counts toward the flush
    interval, so readings that have waited the interval are stored as soon as the storing
    thread is free (with the old fixed wait after a wake-up they would wait the interval
    again: here, a minute)."""
    settings.INGEST_FLUSH_INTERVAL = 60
    now = [1000.0]
    monkeypatch.setattr(batcher, "_clock", lambda: now[0])
    stores = HeldStores(monkeypatch)
    ingest = batcher.batcher_get()
    wards: dict[int, int | None] = {device.patient_id: None}
    first = ingest.submit(_readings(device, 1), wards)
    now[0] += 61  # (before the batcher looks: the first reading is due at once)
    await stores.wait_entered(0)
    second = ingest.submit(_readings(device, 2), wards)
    now[0] += 61  # the second reading has waited longer than the interval behind the store
    stores.release[0].set()
    assert await asyncio.wait_for(first, 20) == []
    await stores.wait_entered(1)  # started at once, not a minute later
    stores.release[1].set()
    assert await asyncio.wait_for(second, 20) == []
