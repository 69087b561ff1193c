"""Request parsers of the REST API (a module of its own: DRF imports it while it builds APIView,
so it must not import anything that imports DRF's views)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers

from common.strictjson import json_loads


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser reading with ``common.strictjson``: NaN, Infinity, numbers beyond the
    float range and nesting too deep for the interpreter are a 400 ``parse_error``, not data
    (or a 500 from ``RecursionError``)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(stream.read().decode(encoding))
        except ValueError as exc:  # UnicodeDecodeError included
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
