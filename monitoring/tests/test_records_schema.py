from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_device_scheme_is_documented_only_on_posting_readings():
    schema = _schema()
    assert schema["components"]["securitySchemes"]["DeviceToken"]["in"] == "header"
    records = schema["paths"]["/api/records/"]["post"]
    assert {"DeviceToken": []} in records["security"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (path, method) != ("/api/records/", "post"):
                assert {"DeviceToken": []} not in operation.get("security", []), (path, method)


def test_records_body_is_one_reading_or_a_list_and_errors_are_documented():
    schema = _schema()
    records = schema["paths"]["/api/records/"]["post"]
    ref = records["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    kinds = [option.get("type", "object") for option in body["oneOf"]]
    assert sorted(kinds) == ["array", "object"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(records["responses"])
    history = schema["paths"]["/api/records/{patient_id}/"]["get"]
    names = {p["name"] for p in history["parameters"]}
    assert {"from", "to", "metric", "bucket", "cursor"} <= names
    device_create = schema["paths"]["/api/devices/"]["post"]
    assert {"201", "400", "403", "409"} <= set(device_create["responses"])
