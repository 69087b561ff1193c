from __future__ import annotations

from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "fhir_api"
    verbose_name = "FHIR R4 read API"

    def ready(self) -> None:
        from audit.middleware import audit_routes_register
        from fhir_api.audit import fhir_audit_target

        audit_routes_register("fhir", fhir_audit_target)
