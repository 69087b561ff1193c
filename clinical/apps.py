from __future__ import annotations

from django.apps import AppConfig


class ClinicalConfig(AppConfig):
    name = "clinical"
    verbose_name = "Clinical"

    def ready(self) -> None:
        from clinical import alert_admin  # noqa: F401  (registers the alert admin classes)
