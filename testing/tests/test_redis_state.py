from __future__ import annotations

from alerts.state import key_prefix, redis_client, state_key
from monitoring.stream import entries as stream
from testing.redis_state import alarm_state_clear, readings_stream_clear


def test_clearing_deletes_only_alarm_state_or_the_readings_stream(clean_readings_stream):
    client = redis_client()
    band, entries, other = state_key(1, "heart_rate"), stream.partition_key(0), "unrelated-key"
    client.set(band, b"x")
    client.xadd(entries, {"f": "v"})
    client.set(other, b"kept")
    try:
        assert alarm_state_clear() == 1
        assert client.exists(band, entries, other) == 2
        client.set(f"{key_prefix()}last-reading", b"x")
        assert readings_stream_clear() == 2
        assert client.get(other) == b"kept"
    finally:
        client.delete(band, entries, other)
