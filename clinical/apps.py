from __future__ import annotations

from django.apps import AppConfig


class ClinicalConfig(AppConfig):
    name = "clinical"
    verbose_name = "Clinical"

    def ready(self) -> None:
        from accounts.mfa import mfa_requirement_register
        from clinical.selectors import place_requires_mfa

        # A place may require a second factor of its doctors (Place.mfa_required_for_doctors).
        mfa_requirement_register(place_requires_mfa)
