"""Every WebSocket frame a test's client sends or receives, checked against the AsyncAPI document
(monitoring/asyncapi.yaml), so the document and the code cannot drift apart (zulip's
``event_schema`` checked in ``test_events`` is the model).

The document's object schemas are read as closed: a frame with a field that the document does
not name fails, as does a frame type the channel does not list for that direction. The root
conftest installs the check for every test (``frames_checked``) on the two clients the tests
use: channels' ``WebsocketCommunicator`` and the ``websockets`` client of the live tests. A
test that sends deliberately malformed frames says so, with the ``frames_malformed`` marker or
around the sends with :func:`frames_unchecked` (what the server answers is checked all the
same).
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from monitoring.asyncapi import asyncapi_document

# "send": what a client sends (the server receives), "receive": what a client receives.
Direction = str

_unchecked: ContextVar[bool] = ContextVar("frames_unchecked", default=False)


class FrameNotDocumented(AssertionError):
    pass


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """The node with every ``$ref`` inlined (the document has no recursive references)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(document, target)
        return {key: _resolve(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(document, value) for value in node]
    return node


def _closed(schema: Any, *, in_all_of: bool = False) -> Any:
    """The schema with each object schema closed to the properties it (or its ``allOf``)
    names. Members of an ``allOf`` stay open: their parent closes over all of them."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "allOf":
            closed[key] = [_closed(member, in_all_of=True) for member in value]
        elif key in ("properties", "patternProperties"):
            closed[key] = {name: _closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "oneOf", "anyOf"):
            closed[key] = _closed(value)
        else:
            closed[key] = value
    names_properties = "properties" in schema or "allOf" in schema
    if names_properties and not in_all_of and "additionalProperties" not in schema:
        closed["unevaluatedProperties"] = False
    return closed


def _types_of(payload: dict[str, Any]) -> list[str]:
    """The frame types a message payload accepts (its ``type`` const or enum)."""
    found: list[str] = []
    for schema in [payload, *payload.get("allOf", [])]:
        spec = schema.get("properties", {}).get("type", {})
        if "const" in spec:
            found.append(spec["const"])
        found.extend(spec.get("enum", []))
    return found


@cache
def _schemas() -> dict[tuple[str, Direction, str], dict[str, Any]]:
    """(channel address, direction, frame type) -> the closed payload schema."""
    document = asyncapi_document()
    found: dict[tuple[str, Direction, str], dict[str, Any]] = {}
    for operation in document["operations"].values():
        channel = _resolve(document, operation["channel"])["address"]
        # The server "receives" what clients send; replies and "send" operations go to clients.
        sent_by_client = operation["action"] == "receive"
        groups = [("send" if sent_by_client else "receive", operation["messages"])]
        if "reply" in operation:
            groups.append(("receive", operation["reply"]["messages"]))
        for direction, messages in groups:
            for message in messages:
                payload = _resolve(document, message)["payload"]
                for kind in _types_of(payload):
                    found[(channel, direction, kind)] = _closed(copy.deepcopy(payload))
    return found


def frame_check(path: str, direction: Direction, frame: Any) -> None:
    """Raise :class:`FrameNotDocumented` unless the document describes ``frame`` on the
    channel at ``path`` in that direction."""
    if direction == "send" and _unchecked.get():
        return
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameNotDocumented(f"{path} {direction}: not a typed frame: {frame!r}")
    schema = _schemas().get((path, direction, frame["type"]))
    if schema is None:
        raise FrameNotDocumented(
            f"{path} {direction}: frame type {frame['type']!r} is not in the document (monitoring/asyncapi.yaml)"
        )
    try:
        jsonschema.validate(frame, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        raise FrameNotDocumented(
            f"{path} {direction}: {frame!r} does not match monitoring/asyncapi.yaml: {exc.message}"
        ) from exc


def frame_text_check(path: str, direction: Direction, text: str | bytes | None) -> None:
    if text is None or (direction == "send" and _unchecked.get()):
        return
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise FrameNotDocumented(f"{path} {direction}: not JSON: {text[:200]!r}") from exc
    frame_check(path, direction, frame)


@contextlib.contextmanager
def frames_unchecked() -> Iterator[None]:
    """Frames sent inside are not checked: a test of how the server answers a malformed frame
    (the answers are checked)."""
    token = _unchecked.set(True)
    try:
        yield
    finally:
        _unchecked.reset(token)


@pytest.fixture(autouse=True)
def frames_checked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Check every frame of the test clients against the AsyncAPI document (a test marked
    ``frames_malformed``: every frame they receive)."""
    sends_checked = request.node.get_closest_marker("frames_malformed") is None

    def check(path: str, direction: Direction, data: str | bytes | None) -> None:
        if direction == "receive" or sends_checked:
            frame_text_check(path, direction, data)

    from channels.testing import WebsocketCommunicator
    from websockets.asyncio.client import ClientConnection

    communicator_send, communicator_receive = (
        WebsocketCommunicator.send_to,
        WebsocketCommunicator.receive_from,
    )

    async def send_to(
        self: WebsocketCommunicator, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        check(self.scope["path"], "send", text_data if text_data else bytes_data)
        await communicator_send(self, text_data, bytes_data)

    async def receive_from(
        self: WebsocketCommunicator,
        timeout: float = 1,  # noqa: ASYNC109  (channels' own signature)
    ) -> str | bytes:
        data = await communicator_receive(self, timeout)
        check(self.scope["path"], "receive", data)
        return data

    client_send, client_recv = ClientConnection.send, ClientConnection.recv

    async def send(self: ClientConnection, message: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(message, (str, bytes)):
            check(_path(self), "send", message)
        await client_send(self, message, *args, **kwargs)

    async def recv(self: ClientConnection, *args: Any, **kwargs: Any) -> Any:
        data = await client_recv(self, *args, **kwargs)
        check(_path(self), "receive", data)
        return data

    monkeypatch.setattr(WebsocketCommunicator, "send_to", send_to)
    monkeypatch.setattr(WebsocketCommunicator, "receive_from", receive_from)
    monkeypatch.setattr(ClientConnection, "send", send)
    monkeypatch.setattr(ClientConnection, "recv", recv)


def _path(connection: Any) -> str:
    request = connection.request
    return urlsplit(request.path).path if request is not None else ""
