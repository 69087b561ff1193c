"""Alarm rule state and the readings stream live in Redis and outlive a test's database
rollback (and ids repeat across test runs). The helpers here delete exactly those keys, not
the whole Redis database, which also holds the channel layer and the Celery broker of any
live stack the test run started; a pytest plugin registered by the root conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest


def redis_keys_delete(*patterns: str) -> int:
    """Delete the keys matching any of ``patterns``; how many there were."""
    from alerts.state import redis_client

    client = redis_client()
    keys = [key for pattern in patterns for key in client.scan_iter(match=pattern, count=1000)]
    if keys:
        client.delete(*keys)
    return len(keys)


def alarm_state_clear() -> int:
    """Every alarm rule's state (bands, offline watch, last readings)."""
    from alerts.state import key_prefix

    return redis_keys_delete(f"{key_prefix()}*")


def readings_stream_delete() -> int:
    """The readings stream: its partitions (entries and consumer group), leases and the set
    of live evaluators."""
    from monitoring.stream import entries as stream

    keys = [stream.partition_key(p) for p in range(stream.partitions())]
    keys += [stream.lease_key(p) for p in range(stream.partitions())]
    deleted = stream.redis_client().delete(*keys, stream.evaluators_key())
    return cast(int, deleted)


def readings_stream_clear() -> int:
    """The readings stream and the alarm state its evaluation left."""
    return readings_stream_delete() + alarm_state_clear()


@pytest.fixture(autouse=True)
def ctg_windows_forgotten() -> None:
    """The evaluator's CTG windows are process memory keyed by patient id, and ids repeat
    after a rollback: each test starts with none."""
    from alerts.ctg_window import ctg_windows

    ctg_windows.clear()


@pytest.fixture(autouse=True)
def alarm_state_trust_forgotten() -> None:
    """What an evaluator has rebuilt of the cached rule state is process memory keyed by
    patient id, and ids repeat after a rollback: each test starts trusting nothing."""
    from alerts.state_rebuild import trust_reset

    trust_reset()


@pytest.fixture
def clean_alarm_state() -> Iterator[None]:
    """Start and end the test with no alarm rule state."""
    alarm_state_clear()
    yield
    alarm_state_clear()


@pytest.fixture(autouse=True)
def readings_stream_emptied_after_test() -> Iterator[None]:
    """Entries a test left in the readings stream (its rows rolled back) are not evaluated by a
    later test."""
    yield
    readings_stream_delete()


@pytest.fixture
def clean_readings_stream() -> Iterator[None]:
    """Start and end the test with an empty readings stream and no alarm rule state."""
    readings_stream_clear()
    yield
    readings_stream_clear()
