from __future__ import annotations

from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "fhir_api"
    verbose_name = "FHIR R4 read API"
