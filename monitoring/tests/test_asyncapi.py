from __future__ import annotations

import yaml

from monitoring.asyncapi import asyncapi_document


def _refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def _resolve(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_is_served_as_yaml_and_json(client):
    response = client.get("/api/asyncapi/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["asyncapi"] == "3.0.0"
    assert {c["address"] for c in document["channels"].values()} == {
        "/ws/devices/",
        "/ws/dashboard/",
    }
    response = client.get("/api/asyncapi/?format=json")
    assert response.json() == document


def test_every_reference_resolves_and_operations_use_their_channel_messages():
    document = asyncapi_document()
    for ref in _refs(document, []):
        assert _resolve(document, ref) is not None, ref
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/")
