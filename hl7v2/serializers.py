from __future__ import annotations

from typing import Any

from rest_framework import serializers

from hl7v2.models import Hl7Sender


class _Nullable(serializers.CharField):
    """A text field where null (and "") means "matches anything"; stored as ""."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, allow_null=True, allow_blank=True, **kwargs)

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return str(value) if value else None


class Hl7SenderSerializer(serializers.ModelSerializer[Hl7Sender]):
    sending_application = _Nullable(max_length=180, help_text="MSH-3 first component; null: any.")
    sending_facility = _Nullable(max_length=180, help_text="MSH-4 first component; null: any.")
    tls_subject = _Nullable(
        max_length=254,
        help_text="Over TLS: the client certificate's subject common name; null: any.",
    )
    address = serializers.CharField(max_length=64, help_text="IP address or CIDR network.")

    class Meta:
        model = Hl7Sender
        fields = (
            "id",
            "place",
            "name",
            "address",
            "sending_application",
            "sending_facility",
            "tls_subject",
            "created_at",
        )
        read_only_fields = ("id", "place", "created_at")
