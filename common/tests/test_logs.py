"""Log records as JSON (LOG_FORMAT=json) and as text, with the ids they are about."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime, timedelta

from common.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    log_context,
    log_context_ids,
    log_ids,
)


def record(message: str = "reading stored", *, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.getLogger("monitoring.readings").makeRecord(
        "monitoring.readings", logging.WARNING, __file__, 1, message, (), exc_info, extra=extra
    )
    ContextFilter().filter(made)
    return made


def test_a_record_without_ids_is_one_json_object_with_the_standard_fields():
    line = JsonFormatter().format(record("stream %s", exc_info=None))
    assert "\n" not in line
    parsed = json.loads(line)
    assert set(parsed) == {"timestamp", "level", "logger", "message"}
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "monitoring.readings"
    assert parsed["message"] == "stream %s"
    assert datetime.fromisoformat(parsed["timestamp"]).utcoffset() == timedelta(0)


def test_ids_given_with_extra_are_fields_of_the_json_object():
    class Alert:
        pk, patient_id, device_id = 7, 3, 11

    parsed = json.loads(JsonFormatter().format(record(**log_ids(alert=Alert()), attempt=2)))
    assert parsed["alert_id"] == 7
    assert parsed["patient_id"] == 3
    assert parsed["device_id"] == 11
    assert parsed["attempt"] == 2
    assert parsed["message"] == "reading stored"


def test_ids_bound_to_the_context_reach_every_record_until_the_block_ends():
    with log_context(request_id="abc-1", device_id=5, patient_id=None):
        inside = json.loads(JsonFormatter().format(record()))
        with log_context(alert_id=9):
            nested = json.loads(JsonFormatter().format(record(device_id=6)))
    after = json.loads(JsonFormatter().format(record()))

    assert inside["request_id"] == "abc-1" and inside["device_id"] == 5
    assert "patient_id" not in inside  # None is not an id
    assert nested["alert_id"] == 9 and nested["request_id"] == "abc-1"
    assert nested["device_id"] == 6  # extra= wins over the context
    assert "request_id" not in after and "device_id" not in after


async def test_a_task_inherits_the_context_and_its_own_binding_stays_inside_it():
    async def connection() -> dict:
        with log_context(device_id=42):
            await asyncio.sleep(0)
            return log_context_ids()

    with log_context(request_id="r"):
        seen = await asyncio.create_task(connection())
        assert log_context_ids() == {"request_id": "r"}
    assert seen == {"request_id": "r", "device_id": 42}


def test_an_exception_is_kept_in_the_same_json_line():
    try:
        raise ValueError("bad frame")
    except ValueError:
        line = JsonFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    parsed = json.loads(line)
    assert "ValueError: bad frame" in parsed["exc_info"]


def test_the_text_format_stays_readable_and_names_the_ids():
    formatter = TextFormatter("%(levelname)s %(name)s %(message)s")
    assert formatter.format(record()) == "WARNING monitoring.readings reading stored"
    with log_context(device_id=5, patient_id=3):
        assert formatter.format(record()) == (
            "WARNING monitoring.readings reading stored [device_id=5 patient_id=3]"
        )
