"""Property-based frame fuzzing of both WebSocket channels (hypothesis, fixed seed, bounded).

For any frame, well-formed or not: the consumer never fails (no 1011, no exception), every
frame is answered with JSON that a strict parser (a browser) reads, an ``error`` frame has the
contract's shape, and the connection keeps working afterwards (a device's next reading is
acked, a dashboard answers ``ping``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.ws import dashboard_connect, device_connect, reading

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

FUZZ = settings(
    max_examples=120,
    derandomize=True,  # a fixed seed: the same frames on every run
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(lambda d: timezone(timedelta(minutes=round(d.total_seconds() / 60))))
NOW = datetime.now(UTC)
times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(
        min_value=(NOW - timedelta(days=40)).replace(tzinfo=None),
        max_value=(NOW + timedelta(hours=1)).replace(tzinfo=None),
        timezones=offsets,
    ),
).map(lambda t: t.isoformat())
metrics = st.sampled_from(["heart_rate", "fetal_heart_rate", "uterine_activity"]) | json_values
readings = st.fixed_dictionaries(
    {},
    optional={
        "seq": st.integers(min_value=-5, max_value=2**64) | json_values,
        "metric": metrics,
        "bpm": st.integers(min_value=-10, max_value=400) | json_values,
        "recorded_at": times | json_values,
    },
)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity go out as the bare tokens


device_frames = st.one_of(
    readings.map(lambda r: _text({"type": "reading", **r})),
    st.lists(readings | json_values, max_size=5).map(
        lambda items: _text({"type": "readings", "items": items})
    ),
    st.fixed_dictionaries(
        {"type": json_values | st.text(max_size=10)}, optional={"items": json_values}
    ).map(_text),
    json_values.map(_text),
    st.text(max_size=40),
    st.integers(min_value=900, max_value=200_000).map(_deep),
    st.binary(max_size=40),
)


def _strict(raw: str | bytes) -> dict[str, Any]:
    def refuse(name: str) -> Any:
        raise AssertionError(f"the server sent bare {name}: {raw!r}"[:300])

    frame = json.loads(raw, parse_constant=refuse)
    assert isinstance(frame, dict) and isinstance(frame.get("type"), str), raw
    if frame["type"] == "error":
        assert set(frame["error"]) == {"code", "message", "details"}, frame
        assert isinstance(frame["error"]["code"], str) and frame["error"]["message"], frame
    return frame


async def _send(communicator: Any, frame: str | bytes) -> None:
    # send_input, not send_to: an empty frame is a frame too.
    key = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", key: frame})


async def _fuzz(
    frames: st.SearchStrategy[str | bytes],
    exchange: Callable[[str | bytes], Coroutine[Any, Any, None]],
    *,
    fuzz_settings: settings = FUZZ,
) -> None:
    """``exchange`` each frame hypothesis draws: hypothesis drives its examples from a thread,
    each exchange runs on this test's event loop (where its communicators live)."""
    loop = asyncio.get_running_loop()

    @fuzz_settings
    @given(frame=frames)
    def fuzz(frame: str | bytes) -> None:
        asyncio.run_coroutine_threadsafe(exchange(frame), loop).result(timeout=30)

    await asyncio.to_thread(fuzz)


async def test_device_channel_answers_every_frame_and_keeps_acking(device):
    communicator = await device_connect(device.token)
    probes = itertools.count(10**15)

    async def exchange(frame: str | bytes) -> None:
        await _send(communicator, frame)
        probe = next(probes)
        await communicator.send_json_to({"type": "reading", **reading(probe)})
        answers: list[dict[str, Any]] = []
        while True:
            answer = _strict(await communicator.receive_from(timeout=10))
            if answer["type"] == "ack" and probe in answer["seqs"]:
                break
            answers.append(answer)
        assert answers, f"no answer to {frame[:200]!r}"
        assert {a["type"] for a in answers} <= {"ack", "error", "pong"}, answers

    await _fuzz(device_frames, exchange)
    await communicator.disconnect()


id_values = st.integers(min_value=-3, max_value=2**64) | json_values
dashboard_frames = st.one_of(
    st.builds(
        lambda kind, scope, value: _text({"type": kind, scope: value}),
        st.sampled_from(["subscribe", "unsubscribe"]),
        st.sampled_from(["ward", "patient", "place"]),
        id_values,
    ),
    id_values.map(lambda value: _text({"type": "alert.ack", "alert": value})),
    st.fixed_dictionaries(
        {"type": json_values | st.text(max_size=10)}, optional={"ward": json_values}
    )
    .filter(
        lambda f: f["type"] != "auth"  # a bad token closes 4401 by design (fuzzed before auth)
    )
    .map(_text),
    json_values.map(_text),
    st.text(max_size=40),
    st.integers(min_value=900, max_value=200_000).map(_deep),
    st.binary(max_size=40),
)


async def test_dashboard_channel_answers_every_frame_and_keeps_answering(nurse, ward):
    communicator = await dashboard_connect(nurse)

    async def exchange(frame: str | bytes) -> None:
        await _send(communicator, frame)
        await communicator.send_json_to({"type": "ping"})
        answers: list[dict[str, Any]] = []
        while True:
            answer = _strict(await communicator.receive_from(timeout=10))
            answers.append(answer)
            pongs = sum(a["type"] == "pong" for a in answers)
            if answer["type"] == "pong" and (pongs == 2 or not _is_ping(frame)):
                break
        assert len(answers) >= 2, f"no answer to {frame[:200]!r}: {answers}"

    await _fuzz(dashboard_frames, exchange)
    await communicator.disconnect()


def _is_ping(frame: str | bytes) -> bool:
    try:
        parsed = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "ping"


async def test_dashboard_before_auth_answers_an_error_or_closes_4401(db):
    async def exchange(frame: str | bytes) -> None:
        communicator = await dashboard_connect()
        await _send(communicator, frame)
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            assert output.get("code") == 4401, output
        else:
            assert _strict(output.get("text") or output["bytes"])["type"] == "error"
        await communicator.disconnect()

    await _fuzz(
        device_frames | dashboard_frames, exchange, fuzz_settings=settings(FUZZ, max_examples=60)
    )
