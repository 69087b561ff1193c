"""FHIR JSON in and out: the ``application/fhir+json`` renderer and the content negotiation
that honours ``_format`` and the Accept header the way FHIR clients send them."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

FHIR_JSON = "application/fhir+json"

# What a client may ask for and get FHIR JSON: the FHIR type, the legacy DSTU2 name, plain
# JSON and wildcards. ``_format`` takes the short form too.
_ACCEPTED_TYPES = frozenset(
    {FHIR_JSON, "application/json+fhir", "application/json", "application/*", "*/*"}
)
_ACCEPTED_FORMATS = frozenset({"json", FHIR_JSON, "application/json", "application/json+fhir"})


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "json"


def _media_types(accept: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()]


class FhirContentNegotiation(BaseContentNegotiation):
    """Always answers FHIR JSON, or 406 when the client accepts nothing of the kind (XML)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        requested = request.query_params.get("_format")
        if requested is not None:
            if requested.split(";", 1)[0].strip().lower() not in _ACCEPTED_FORMATS:
                raise NotAcceptable(f"_format={requested} is not served; use json.")
            return renderer, FHIR_JSON
        accept = request.headers.get("Accept", "")
        if accept and not _ACCEPTED_TYPES.intersection(_media_types(accept)):
            raise NotAcceptable(f"This server answers {FHIR_JSON} only.")
        return renderer, FHIR_JSON
