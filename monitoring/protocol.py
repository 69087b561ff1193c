"""The WebSocket protocol of both channels as pure code: a frame's bytes in, a typed command
(or the refusal to answer) out, and the frames the server builds. No I/O and no state of a
connection: the consumers (``monitoring.consumers``) move bytes and call services, and this
module is tested without sockets. The frames are those of docs/protocol.md and
monitoring/asyncapi.yaml.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.errors import ErrorDetails, error_body
from common.ids import is_id
from common.strictjson import json_loads


class CloseCode:
    """Application close codes (4000-4999) used by both channels."""

    NOT_AUTHENTICATED = 4401  # missing/bad device token; dashboard auth missing/bad/expired
    DEVICE_INACTIVE = 4403  # the device is deactivated
    DEVICE_UNASSIGNED = 4409  # the device is not assigned to a patient
    # The database cannot be reached to authenticate the device: reconnect with back-off.
    # (1013 "try again later" is what this means in RFC 6455 terms, but an ASGI server may send
    # only 1000 and 3000-4999; Daphne refuses 1013 and sends nothing.)
    STORAGE_UNAVAILABLE = 4503


# --- Commands ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A frame that is answered with the contract's error frame and otherwise ignored."""

    code: str
    message: str
    details: ErrorDetails | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, self.message, self.details, **self.extra)


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class SendReadings:
    """``reading`` (one) or ``readings`` (a batch): the raw items, each parsed by ingest."""

    items: list[Any]


@dataclass(frozen=True, slots=True)
class Authenticate:
    token: Any


@dataclass(frozen=True, slots=True)
class Subscribe:
    kind: str  # a subscription kind (``live.subscriptions``): "ward" or "patient"
    object_id: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    kind: str
    object_id: int


@dataclass(frozen=True, slots=True)
class Registered:
    """A frame type that a higher app registered (``live.registry``), e.g. ``alert.ack``."""

    frame: dict[str, Any]


DeviceCommand = SendReadings | Ping | Refusal
DashboardCommand = Authenticate | Subscribe | Unsubscribe | Ping | Registered | Refusal


# --- Decoding ---------------------------------------------------------------------------------


def frame_decode(raw: str | bytes, *, max_bytes: int) -> dict[str, Any] | Refusal:
    """A frame as sent: a JSON object with a string ``type``, at most ``max_bytes`` long."""
    size = len(raw)
    if isinstance(raw, str) and size * 4 > max_bytes:
        # A character is at most 4 bytes in UTF-8: only a long text is encoded to count them.
        size = len(raw.encode("utf-8"))
    if size > max_bytes:
        return Refusal(
            "frame_too_large", f"Frames are limited to {max_bytes} bytes.", {"size": [str(size)]}
        )
    try:
        frame = json_loads(raw)
    except ValueError as exc:  # also NaN, Infinity, nesting too deep, invalid UTF-8
        return Refusal("parse_error", f"The frame is not valid JSON: {exc}")
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return Refusal("invalid_frame", 'A frame is a JSON object with a "type".')
    return frame


def device_command(frame: dict[str, Any], *, max_items: int) -> DeviceCommand:
    """What a device's frame asks for."""
    kind = frame["type"]
    if kind == "reading":
        return SendReadings([frame])
    if kind == "readings":
        items = frame.get("items")
        if not isinstance(items, list):
            return Refusal(
                "validation_error",
                '"items" must be a list of readings.',
                {"items": ["Must be a list."]},
            )
        if not items:
            return Refusal(
                "validation_error",
                '"items" must hold at least one reading.',
                {"items": ["Must not be empty."]},
            )
        if len(items) > max_items:
            return Refusal(
                "batch_too_large",
                f"A batch holds at most {max_items} readings.",
                {"items": [str(len(items))]},
            )
        return SendReadings(items)
    if kind == "ping":
        return Ping()
    return unknown_type(kind)


def dashboard_command(
    frame: dict[str, Any], *, kinds: Sequence[str], registered: Collection[str]
) -> DashboardCommand:
    """What a dashboard's frame asks for; ``kinds``: the subscription kinds, ``registered``:
    the frame types higher apps registered."""
    kind = frame["type"]
    if kind == "auth":
        return Authenticate(frame.get("token"))
    if kind in ("subscribe", "unsubscribe"):
        scope = _scope_of(frame, kinds)
        if scope is None:
            return Refusal(
                "validation_error",
                'Name exactly one of "ward" or "patient" (a positive integer id).',
                {"ward": ["A positive integer."], "patient": ["A positive integer."]},
            )
        return Subscribe(*scope) if kind == "subscribe" else Unsubscribe(*scope)
    if kind == "ping":
        return Ping()
    if kind in registered:
        return Registered(frame)
    return unknown_type(kind)


def _scope_of(frame: dict[str, Any], kinds: Sequence[str]) -> tuple[str, int] | None:
    keys = [k for k in kinds if k in frame]
    if len(keys) != 1:
        return None
    value = frame[keys[0]]
    if not is_id(value):
        return None
    return keys[0], value


def unknown_type(kind: str) -> Refusal:
    return Refusal("unknown_type", f"Unknown frame type {kind!r}.", {"type": [kind]})


def echo(value: Any) -> Any:
    """A value of a refused frame said back to the client (the seq, the alert id): as sent when
    it is a scalar, null when it is an array or object (which may be nested deeply)."""
    return None if isinstance(value, (dict, list)) else value


def echo_seq(raw: Any) -> Any:
    return echo(raw.get("seq")) if isinstance(raw, dict) else None


def device_token(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The token of an ``Authorization: Device <token>`` header ("" when there is none)."""
    for key, value in headers:
        if key.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "device" else ""
    return ""


# --- Frames the server builds -----------------------------------------------------------------


def error_frame(
    code: str, message: str, details: ErrorDetails | None = None, **extra: Any
) -> dict[str, Any]:
    """The contract's error frame; ``extra`` names what it is about (``seq``, ``ward``...)."""
    return {"type": "error", **extra, **error_body(code, message, details)}


def ack_text(seqs: Iterable[int | None]) -> str:
    """The ``ack`` frame as text. Every seq is an int (``reading_parse`` requires one): the
    frame the JSON encoder would write, without its per-call cost."""
    return '{"type":"ack","seqs":[' + ",".join(map(str, seqs)) + "]}"
