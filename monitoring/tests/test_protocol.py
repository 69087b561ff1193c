"""The protocol core without sockets: frames in, typed commands or refusals out."""

from __future__ import annotations

import pytest

from monitoring import protocol
from monitoring.protocol import (
    Authenticate,
    Ping,
    Refusal,
    Registered,
    SendReadings,
    Subscribe,
    Unsubscribe,
)

KINDS = ["ward", "patient"]


def dashboard(frame):
    return protocol.dashboard_command(frame, kinds=KINDS, registered={"alert.ack"})


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("x" * 11, "frame_too_large"),
        ("{", "parse_error"),
        ('{"a": NaN}', "parse_error"),
        ("[1]", "invalid_frame"),
        ('{"type": 1}', "invalid_frame"),
    ],
)
def test_a_frame_that_is_not_a_typed_json_object_is_refused(raw, code):
    refusal = protocol.frame_decode(raw, max_bytes=10 if code == "frame_too_large" else 100)
    assert isinstance(refusal, Refusal) and refusal.code == code
    assert refusal.frame()["type"] == "error"
    assert refusal.frame()["error"]["code"] == code


def test_the_size_limit_counts_bytes_not_characters():
    assert isinstance(protocol.frame_decode('{"type":"é"}', max_bytes=12), Refusal)
    assert protocol.frame_decode('{"type":"é"}', max_bytes=13) == {"type": "é"}


def test_device_frames_become_commands():
    one = {"type": "reading", "seq": 1}
    assert protocol.device_command(one, max_items=2) == SendReadings([one])
    batch: dict = {"type": "readings", "items": [{"seq": 1}, {"seq": 2}]}
    assert protocol.device_command(batch, max_items=2) == SendReadings(batch["items"])
    assert protocol.device_command({"type": "ping"}, max_items=2) == Ping()


@pytest.mark.parametrize(
    ("frame", "code", "details"),
    [
        ({"type": "readings", "items": {}}, "validation_error", {"items": ["Must be a list."]}),
        ({"type": "readings", "items": []}, "validation_error", {"items": ["Must not be empty."]}),
        ({"type": "readings", "items": [{}] * 3}, "batch_too_large", {"items": ["3"]}),
        ({"type": "subscribe"}, "unknown_type", {"type": ["subscribe"]}),
    ],
)
def test_bad_device_frames_are_refused_with_their_details(frame, code, details):
    refusal = protocol.device_command(frame, max_items=2)
    assert isinstance(refusal, Refusal)
    assert (refusal.code, refusal.details) == (code, details)


def test_dashboard_frames_become_commands():
    assert dashboard({"type": "auth", "token": "t"}) == Authenticate("t")
    assert dashboard({"type": "subscribe", "ward": 3}) == Subscribe("ward", 3)
    assert dashboard({"type": "unsubscribe", "patient": 4}) == Unsubscribe("patient", 4)
    assert dashboard({"type": "ping"}) == Ping()
    ack = {"type": "alert.ack", "alert": 1}
    assert dashboard(ack) == Registered(ack)
    assert dashboard({"type": "nope"}) == protocol.unknown_type("nope")


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "subscribe"},
        {"type": "subscribe", "ward": 1, "patient": 2},
        {"type": "subscribe", "ward": 0},
        {"type": "subscribe", "ward": True},
        {"type": "subscribe", "ward": "1"},
        {"type": "unsubscribe", "patient": 2**63},
    ],
)
def test_a_subscription_must_name_one_positive_64_bit_id(frame):
    refusal = dashboard(frame)
    assert isinstance(refusal, Refusal) and refusal.code == "validation_error"


def test_refused_values_are_echoed_only_when_scalar():
    assert protocol.echo(5) == 5
    assert protocol.echo([1]) is None and protocol.echo({"a": 1}) is None
    assert protocol.echo_seq({"seq": 7}) == 7 and protocol.echo_seq([1]) is None


def test_the_device_token_comes_from_a_device_authorization_header():
    assert protocol.device_token([(b"Authorization", b"Device  abc ")]) == "abc"
    assert protocol.device_token([(b"authorization", b"Bearer abc")]) == ""
    assert protocol.device_token([]) == ""


def test_the_ack_text_is_the_json_an_encoder_would_write():
    import json

    assert json.loads(protocol.ack_text([1, 2])) == {"type": "ack", "seqs": [1, 2]}
