"""Rule state in Redis: which band each patient is in and since when, and when each device
last sent a reading. Shared by every evaluator process, so readings of one patient may be
evaluated anywhere; read with one MGET per batch, written only when a band changes.
"""

from __future__ import annotations

import json
from typing import Any, Self

# The evaluator's one Redis client, shared with the readings stream.
from monitoring.stream.entries import redis_client as redis_client
from monitoring.stream.entries import redis_prefix

STATE_TTL_SECONDS = 3600  # longer than any hold time; a silent patient starts afresh after it.


class RuleState:
    """A patient's rule state as Redis keeps it: compact JSON, and no value is the fresh
    state. Subclasses (dataclasses whose fields all have defaults) say their JSON form."""

    __slots__ = ()

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Self:
        return cls.from_json(json.loads(raw)) if raw else cls()

    def encode(self) -> str:
        return json.dumps(self.as_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        raise NotImplementedError


def key_prefix() -> str:
    return f"{redis_prefix()}alarm:"


def state_key(patient_id: int, metric: str) -> str:
    return f"{key_prefix()}band:{patient_id}:{metric}"


def last_reading_key() -> str:
    """A sorted set: device id -> when the server last received a reading from it."""
    return f"{key_prefix()}last-reading"


def epoch_key() -> str:
    """Written into an empty Redis by the first evaluator: its absence means the cached rule
    state was lost (``state_rebuild``)."""
    return f"{key_prefix()}epoch"


def offline_key(patient_id: int) -> str:
    """Set while the patient has an open device_offline alert (a reading then resolves it)."""
    return f"{key_prefix()}offline:{patient_id}"
