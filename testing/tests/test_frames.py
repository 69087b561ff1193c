"""The frame check of every test against monitoring/asyncapi.yaml (testing/frames.py)."""

from __future__ import annotations

import pytest

from monitoring.asyncapi import asyncapi_document
from testing.frames import FrameNotDocumented, frame_check, frames_unchecked

DEVICES, DASHBOARD = "/ws/devices/", "/ws/dashboard/"


def test_the_documents_own_examples_pass():
    document = asyncapi_document()
    checked = 0
    for channel in document["channels"].values():
        for message in channel["messages"].values():
            target = document["components"]["messages"][message["$ref"].rsplit("/", 1)[1]]
            for example in target.get("examples", []):
                direction = "send" if target["name"] in ("reading", "readings") else "receive"
                frame_check(channel["address"], direction, example["payload"])
                checked += 1
    assert checked >= 5


def test_a_field_the_document_does_not_have_fails():
    frame_check(DEVICES, "receive", {"type": "ack", "seqs": [1]})
    with pytest.raises(FrameNotDocumented, match="unexpected"):
        frame_check(DEVICES, "receive", {"type": "ack", "seqs": [1], "extra": 1})


def test_a_nested_field_the_document_does_not_have_fails():
    item = {"patient": 1, "device": 2, "metric": "heart_rate", "value": 80, "seq": 3}
    item["recorded_at"] = "2026-11-25T10:00:00+00:00"
    frame_check(DASHBOARD, "receive", {"type": "readings", "items": [item]})
    with pytest.raises(FrameNotDocumented):
        frame_check(DASHBOARD, "receive", {"type": "readings", "items": [{**item, "x": 1}]})


def test_a_frame_type_is_checked_for_its_channel_and_direction():
    frame_check(DASHBOARD, "send", {"type": "subscribe", "ward": 1})
    with pytest.raises(FrameNotDocumented, match="not in the document"):
        frame_check(DEVICES, "send", {"type": "subscribe", "ward": 1})
    with pytest.raises(FrameNotDocumented, match="not in the document"):
        frame_check(DASHBOARD, "receive", {"type": "subscribe", "ward": 1})


def test_a_reading_sent_by_a_device_is_checked_with_its_allof_parts():
    reading = {"seq": 1, "metric": "heart_rate", "bpm": 80}
    reading["recorded_at"] = "2026-11-25T10:00:00+00:00"
    frame_check(DEVICES, "send", {"type": "reading", **reading})
    with pytest.raises(FrameNotDocumented):
        frame_check(DEVICES, "send", {"type": "reading", **reading, "colour": "red"})


def test_malformed_frames_may_be_sent_on_purpose_but_answers_are_still_checked():
    with frames_unchecked():
        frame_check(DEVICES, "send", {"type": "teleport"})
        with pytest.raises(FrameNotDocumented):
            frame_check(DEVICES, "receive", {"type": "teleport"})
