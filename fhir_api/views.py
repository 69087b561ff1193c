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
from hl7v2.selectors import observation_statuses


def base_url(request: Request) -> str:
    """The absolute base of the FHIR API (``https://host/fhir/``)."""
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def next_url(request: Request, query: QueryDict, cursor: str) -> str:
    """The next page: the parameters used (unknown ones left out under lenient handling)
    and the position after this page."""
    query = query.copy()
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

    def search_query(self, request: Request, allowed: set[str]) -> QueryDict:
        """The search's parameters: unknown ones refused (400), or left out when the client
        sent ``Prefer: handling=lenient``."""
        lenient = search.handling_lenient(request.headers.get("Prefer"))
        return search.parameters_check(request.query_params, allowed, lenient=lenient)

    def searchset(
        self,
        request: Request,
        query: QueryDict,
        *,
        rows: Callable[[], Sequence[Any]],
        count: int,
        render: Callable[[Sequence[Any]], list[resources.Resource]],
        position: Callable[[Any], list[Any]],
        total: Callable[[], int],
        total_by_default: bool = True,
        include: Callable[[Sequence[Any]], list[resources.Resource]] | None = None,
    ) -> Response:
        """A searchset Bundle of the first ``count`` of ``rows()`` (fetched ``count + 1``),
        with a next link that starts after the last entry when more remain, ``total`` as
        ``_summary``/``_total`` ask, and the resources ``include`` adds."""
        summary = search.summary_parse(query, total_by_default=total_by_default)
        base = base_url(request)
        self_url = _url(request, query)
        if summary.count_only:
            bundle = resources.bundle_searchset(
                entries=[], self_url=self_url, next_url=None, total=total()
            )
            return Response(bundle)
        found = rows()
        page = found[:count]
        entries = [(f"{base}{res['resourceType']}/{res['id']}", res) for res in render(page)]
        included = [
            (f"{base}{res['resourceType']}/{res['id']}", res)
            for res in (include(page) if include is not None else [])
        ]
        more = len(found) > count
        return Response(
            resources.bundle_searchset(
                entries=entries,
                self_url=self_url,
                next_url=next_url(request, query, search.cursor_encode(position(page[-1])))
                if more
                else None,
                total=total() if summary.with_total else None,
                included=included,
            )
        )


def _url(request: Request, query: QueryDict) -> str:
    return request.build_absolute_uri(f"{request.path}?{query.urlencode(safe='|:/')}")


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
        query = self.search_query(request, {"identifier", "name", "birthdate"})
        count = search.count_parse(query)
        after = search.cursor_decode(query, (int,))
        patients = selectors.patients_query(
            user=request_person(request),
            identifiers=_identifiers(query),
            names=[[v for v in values if v.strip()] for values in search.values_of(query, "name")],
            birthdates=[
                [search.date_parse(raw, "birthdate") for raw in values]
                for values in search.values_of(query, "birthdate")
            ],
        )
        page = patients if after is None else patients.filter(id__gt=after[0])
        return self.searchset(
            request,
            query,
            rows=lambda: list(page[: count + 1]),
            count=count,
            render=lambda rows: [resources.patient_resource(p) for p in rows],
            position=lambda patient: [patient.id],
            total=patients.count,
        )


class DeviceReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        device = selectors.device_get(
            user=request_person(request), device_id=resource_id(id, "Device")
        )
        return Response(resources.device_resource(device))


class DeviceSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = self.search_query(request, {"patient", "identifier"})
        count = search.count_parse(query)
        after = search.cursor_decode(query, (int,))
        patient_id = _patient_parameter(query) if "patient" in query else None
        identifiers = _identifiers(query)
        user = request_person(request)

        def rows() -> list[Any]:
            return selectors.devices_search(
                user=user,
                patient_id=patient_id,
                identifiers=identifiers,
                after_id=None if after is None else after[0],
                count=count,
            )

        def total() -> int:
            return selectors.devices_query(
                user=user, patient_id=patient_id, identifiers=identifiers
            ).count()

        return self.searchset(
            request,
            query,
            rows=rows,
            count=count,
            render=lambda devices: [resources.device_resource(d) for d in devices],
            position=lambda device: [device.id],
            total=total,
        )


class ObservationReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        reading = selectors.observation_get(
            user=request_person(request), reading_id=resource_id(id, "Observation")
        )
        (observation,) = observations_render([reading])
        return Response(observation)


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


# _include values taken on Observation searches -> the reference they follow.
OBSERVATION_INCLUDES = {
    "Observation:patient": "patient",
    "Observation:subject": "patient",
    "Observation:subject:Patient": "patient",
    "Observation:patient:Patient": "patient",
    "Observation:device": "device",
    "Observation:device:Device": "device",
}


def _includes(query: QueryDict, lenient: bool) -> set[str]:
    wanted: set[str] = set()
    for raw in query.getlist("_include"):
        target = OBSERVATION_INCLUDES.get(raw)
        if target is None and not lenient:
            raise InvalidSearch(
                f"_include={raw} is not supported; supported: Observation:patient, "
                "Observation:subject, Observation:device."
            )
        if target is not None:
            wanted.add(target)
    return wanted


def observations_render(readings: Sequence[Any]) -> list[resources.Resource]:
    """Observations with each reading's result status (one query for a page)."""
    statuses = observation_statuses(keys=[(r.device_id, r.seq) for r in readings])
    return [
        resources.observation_resource(r, statuses.get((r.device_id, r.seq), "final"))
        for r in readings
    ]


class ObservationSearchView(FhirView):
    def get(self, request: Request) -> Response:
        allowed = {"patient", "subject", "code", "category", "date", "_sort", "_include"}
        allowed.add("_lastUpdated")
        query = self.search_query(request, allowed)
        if query.get("_sort", "-date") != "-date":
            raise InvalidSearch("Observations are sorted newest first only (_sort=-date).")
        includes = _includes(query, search.handling_lenient(request.headers.get("Prefer")))
        count = search.count_parse(query)
        after = _time_position(query)
        patient_id = _patient_parameter(query)
        user = request_person(request)
        readings = selectors.observations_query(
            user=user,
            patient_id=patient_id,
            metrics=_observation_metrics(query),
            dates=[
                [search.date_parse(raw, "date") for raw in values]
                for values in search.values_of(query, "date")
            ],
            last_updated=[
                [search.date_parse(raw, "_lastUpdated") for raw in values]
                for values in search.values_of(query, "_lastUpdated")
            ],
        )

        def include(page: Sequence[Any]) -> list[resources.Resource]:
            added: list[resources.Resource] = []
            if "patient" in includes and page:
                added.append(
                    resources.patient_resource(
                        selectors.patient_get(user=user, patient_id=patient_id)
                    )
                )
            if "device" in includes:
                for device_id in sorted({r.device_id for r in page if r.device_id is not None}):
                    device = selectors.device_visible(user=user, device_id=device_id)
                    if device is not None:
                        added.append(resources.device_resource(device))
            return added

        return self.searchset(
            request,
            query,
            rows=lambda: selectors.observations_page(readings, after=after, count=count),
            count=count,
            render=observations_render,
            position=lambda reading: [reading.recorded_at.isoformat(), reading.id],
            total=readings.count,
            total_by_default=False,  # a count over a patient's whole history: on request
            include=include,
        )


class FlagReadView(FhirView):
    def get(self, request: Request, id: str) -> Response:
        alert = selectors.flag_get(user=request_person(request), alert_id=resource_id(id, "Flag"))
        return Response(resources.flag_resource(alert))


class FlagSearchView(FhirView):
    def get(self, request: Request) -> Response:
        query = self.search_query(request, {"patient", "subject", "status"})
        count = search.count_parse(query)
        after = _time_position(query)
        patient_id = _patient_parameter(query)
        statuses: set[str] | None = None
        for values in search.values_of(query, "status"):
            named = {search.token_parse(raw, "status").code for raw in values}
            if not named <= {"active", "inactive"}:
                raise InvalidSearch("status is active or inactive.")
            statuses = named if statuses is None else statuses & named
        user = request_person(request)
        return self.searchset(
            request,
            query,
            rows=lambda: selectors.flags_search(
                user=user, patient_id=patient_id, statuses=statuses, after=after, count=count
            ),
            count=count,
            render=lambda alerts: [resources.flag_resource(a) for a in alerts],
            position=lambda alert: [alert.raised_at.isoformat(), alert.id],
            total=lambda: selectors.flags_count(
                user=user, patient_id=patient_id, statuses=statuses
            ),
        )
