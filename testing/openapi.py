"""Checking response bodies against the OpenAPI document the server publishes."""

from __future__ import annotations

from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema (``type: [T, "null"]``), throughout."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(path: str, method: str, status: int) -> dict[str, Any]:
    """The documented JSON body of one response, ready for ``jsonschema``."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    return {**_as_json_schema(schema), "components": _as_json_schema(document["components"])}


def assert_documented(body: Any, *, path: str, method: str, status: int) -> None:
    """Fail with the first mismatch when ``body`` is not what the schema says."""
    jsonschema.Draft202012Validator(response_schema(path, method, status)).validate(body)
