from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

PATHS = ("/api/places/", "/api/wards/", "/api/patients/")


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("base", PATHS)
def test_every_operation_documents_its_errors(schema, base):
    collection, item = schema["paths"][base], schema["paths"][f"{base}{{id}}/"]
    assert set(collection) - {"parameters"} == {"get", "post"}
    assert set(item) - {"parameters"} == {"get", "put", "patch"}  # no DELETE
    for operations, expected in ((collection, {"get": "200", "post": "201"}), (item, {})):
        for method, operation in operations.items():
            responses = operation["responses"]
            assert expected.get(method, "200") in responses
            assert "401" in responses
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    schema_ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert schema_ref.endswith("/Error")
            if method in {"put", "patch"}:
                assert {"400", "403", "404"} <= set(responses)


def test_lists_are_paginated_and_filterable(schema):
    params = {p["name"] for p in schema["paths"]["/api/patients/"]["get"]["parameters"]}
    assert {"page", "page_size", "ordering", "search", "place", "ward", "active"} <= params
    assert {"monitoring_profile", "sex"} <= params
    ok = schema["paths"]["/api/patients/"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("PaginatedPatientList")


def test_write_only_and_read_only_fields(schema):
    components = schema["components"]["schemas"]
    assert "webhook_secret" not in components["Place"]["properties"]
    assert "webhook_secret" in components["PlaceRequest"]["properties"]
    assert "device" in components["Patient"]["properties"]
    assert "device" not in components["PatientRequest"]["properties"]
    assert "409" in schema["paths"]["/api/patients/"]["post"]["responses"]
