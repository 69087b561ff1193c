from __future__ import annotations

import yaml
from django.core.management import call_command


def test_account_endpoints_are_documented(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    for path in (
        "/api/auth/register/",
        "/api/auth/login/",
        "/api/auth/refresh/",
        "/api/auth/logout/",
        "/api/auth/me/",
        "/api/auth/password/change/",
        "/api/auth/password/forgot/",
        "/api/auth/password/reset/",
        "/api/users/",
        "/api/users/{id}/",
    ):
        assert path in paths, path
    login = paths["/api/auth/login/"]["post"]
    assert {"200", "400", "401", "429"} <= set(login["responses"])
    assert paths["/api/auth/logout/"]["post"]["responses"].keys() >= {"205", "401"}
    assert paths["/api/users/"]["post"]["responses"].keys() >= {"201", "403", "409"}
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
