from __future__ import annotations

from django.apps import AppConfig


class Hl7V2Config(AppConfig):
    name = "hl7v2"
    verbose_name = "HL7 v2 (MLLP)"

    def ready(self) -> None:
        from hl7v2.delivery import AlertManagerTransport
        from notifications.transports import transport_register

        # Alert reports (PCD-04) are deliveries of the outbox, like e-mail and webhooks.
        transport_register(AlertManagerTransport())
