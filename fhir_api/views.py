"""The FHIR R4 read API: parse the search, ask the selectors (which scope to the caller),
render resources. Errors are OperationOutcomes (``fhir_api.errors``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.http import QueryDict
from django.urls import reverse
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from accounts.permissions import IsPerson, request_person
from common.errors import NotFound
from fhir_api import resources, search, selectors
from fhir_api.capability import capability_statement
from fhir_api.errors import InvalidSearch, exception_handler
from fhir_api.negotiation import FhirContentNegotiation, FhirJSONRenderer
from fhir_api.vocabulary import (
    OBSERVATION_CATEGORY,
    OBSERVED_METRICS,
    VITAL_SIGNS,
    metrics_of_token,
)


def base_url(request: Request) -> str:
    """The absolute base of the FHIR API (``https://host/fhir/``)."""
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def next_url(request: Request, cursor: str) -> str:
    query = request.query_params.copy()
    query["_cursor"] = cursor
    return request.build_absolute_uri(f"{request.path}?{query.urlencode(safe='|:/')}")


def resource_id(raw: str, resource_type: str) -> int:
    """Our ids are integers; any other FHIR id names nothing here."""
    found = search.id_parse(raw)
    if found is None:
        raise NotFound(f"{resource_type}/{raw} is not known.")
    return found


class FhirView(APIView):
    """Bearer JWT, FHIR JSON, OperationOutcome errors; not part of the OpenAPI schema (the
    CapabilityStatement describes this API)."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsPerson]
    renderer_classes = [FhirJSONRenderer]
    parser_classes = [JSONParser]
    content_negotiation_class = FhirContentNegotiation
    schema = None

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler

    def searchset(
        self,
        request: Request,
        *,
        rows: Sequence[Any],
        count: int,
        render: Callable[[Any], resources.Resource],
        position: Callable[[Any], list[Any]],
    ) -> Response:
        """A searchset Bundle of the first ``count`` of ``rows`` (fetched ``count + 1``), with
        a next link that starts after the last entry when more remain."""
        page = rows[:count]
        base = base_url(request)
        entries = [(f"{base}{res['resourceType']}/{res['id']}", res) for res in map(render, page)]
        more = len(rows) > count
        return Response(
            resources.bundle_searchset(
                entries=entries,
                self_url=request.build_absolute_uri(),
                next_url=next_url(request, search.cursor_encode(position(page[-1])))
                if more
                else None,
            )
        )


def _time_position(query: QueryDict) -> tuple[Any, int] | None:
    values = search.cursor_decode(query, (str, int))
    return None if values is None else (search.cursor_time(values[0]), values[1])


def _patient_parameter(query: QueryDict) -> int:
    """The one patient a search is about: ``patient=<id>`` or ``subject=Patient/<id>``."""
    given = [("patient", raw) for raw in query.getlist("patient")] + [
        ("subject", raw) for raw in query.getlist("subject")
    ]
    if not given:
        raise InvalidSearch("patient is required (patient=<id>).")
    ids = {search.reference_id_parse(raw, name, "Patient") for name, raw in given}
    if len(ids) != 1:
        raise InvalidSearch("Search one patient at a time.")
    return ids.pop()


class MetadataView(FhirView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(capability_statement(base_url=base_url(request)))


class UnknownView(FhirView):
    """Everything else under /fhir/: a resource type or interaction not served here."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request, rest: str) -> Response:
        raise NotFound(f"{rest or 'The base'} is not served: see {base_url(request)}metadata.")


class PatientReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        patient = selectors.patient_get(
            user=request_person(request), patient_id=resource_id(id, "Patient")
        )
        return Response(resources.patient_resource(patient))


def _identifiers(query: QueryDict) -> list[list[search.Token]]:
    """The ``identifier`` parameters: each repeat (AND) a list of ``system|value`` tokens (OR)."""
    return [
        [search.token_parse(raw, "identifier") for raw in tokens]
        for tokens in search.values_of(query, "identifier")
    ]


class PatientSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = request.query_params
        search.parameters_check(query, {"identifier"})
        count = search.count_parse(query)
        after = search.cursor_decode(query, (int,))
        identifiers = _identifiers(query)
        rows = selectors.patients_search(
            user=request_person(request),
            identifiers=identifiers,
            after_id=None if after is None else after[0],
            count=count,
        )
        return self.searchset(
            request,
            rows=rows,
            count=count,
            render=resources.patient_resource,
            position=lambda patient: [patient.id],
        )


class DeviceReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        device = selectors.device_get(
            user=request_person(request), device_id=resource_id(id, "Device")
        )
        return Response(resources.device_resource(device))


class DeviceSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = request.query_params
        search.parameters_check(query, {"patient", "identifier"})
        count = search.count_parse(query)
        after = search.cursor_decode(query, (int,))
        patient_id = _patient_parameter(query) if "patient" in query else None
        identifiers = _identifiers(query)
        rows = selectors.devices_search(
            user=request_person(request),
            patient_id=patient_id,
            identifiers=identifiers,
            after_id=None if after is None else after[0],
            count=count,
        )
        return self.searchset(
            request,
            rows=rows,
            count=count,
            render=resources.device_resource,
            position=lambda device: [device.id],
        )


class ObservationReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        reading = selectors.observation_get(
            user=request_person(request), reading_id=resource_id(id, "Observation")
        )
        return Response(resources.observation_resource(reading))


def _observation_metrics(query: QueryDict) -> set[str]:
    metrics = set(OBSERVED_METRICS)
    for tokens in search.values_of(query, "code"):
        named: set[str] = set()
        for raw in tokens:
            token = search.token_parse(raw, "code")
            named |= metrics_of_token(token.system, token.code)
        metrics &= named
    for tokens in search.values_of(query, "category"):
        parsed = [search.token_parse(raw, "category") for raw in tokens]
        if not any(
            t.code == VITAL_SIGNS and t.system in (None, OBSERVATION_CATEGORY) for t in parsed
        ):
            metrics = set()
    return metrics


class ObservationSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = request.query_params
        search.parameters_check(query, {"patient", "subject", "code", "category", "date", "_sort"})
        if query.get("_sort", "-date") != "-date":
            raise InvalidSearch("Observations are sorted newest first only (_sort=-date).")
        count = search.count_parse(query)
        after = _time_position(query)
        patient_id = _patient_parameter(query)
        dates = [
            [search.date_parse(raw, "date") for raw in values]
            for values in search.values_of(query, "date")
        ]
        rows = selectors.observations_search(
            user=request_person(request),
            patient_id=patient_id,
            metrics=_observation_metrics(query),
            dates=dates,
            after=after,
            count=count,
        )
        return self.searchset(
            request,
            rows=rows,
            count=count,
            render=resources.observation_resource,
            position=lambda reading: [reading.recorded_at.isoformat(), reading.id],
        )


class FlagReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        alert = selectors.flag_get(user=request_person(request), alert_id=resource_id(id, "Flag"))
        return Response(resources.flag_resource(alert))


class FlagSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = request.query_params
        search.parameters_check(query, {"patient", "subject", "status"})
        count = search.count_parse(query)
        after = _time_position(query)
        patient_id = _patient_parameter(query)
        statuses: set[str] | None = None
        for values in search.values_of(query, "status"):
            named = {search.token_parse(raw, "status").code for raw in values}
            if not named <= {"active", "inactive"}:
                raise InvalidSearch("status is active or inactive.")
            statuses = named if statuses is None else statuses & named
        rows = selectors.flags_search(
            user=request_person(request),
            patient_id=patient_id,
            statuses=statuses,
            after=after,
            count=count,
        )
        return self.searchset(
            request,
            rows=rows,
            count=count,
            render=resources.flag_resource,
            position=lambda alert: [alert.raised_at.isoformat(), alert.id],
        )
