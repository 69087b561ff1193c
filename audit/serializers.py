"""The contract's audit record (OpenAPI documentation of ``audit_record_payload``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from audit.models import AuditRecord
from audit.selectors import audit_record_payload


class AuditActorSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["user", "device", "hl7", "system"])
    id = serializers.IntegerField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    # A field named like Field.label: django-stubs types that attribute as the label text.
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]


class AuditResourceSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(allow_null=True)
    id = serializers.CharField(allow_null=True)


class AuditRecordSerializer(serializers.Serializer[AuditRecord]):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = AuditActorSerializer()
    address = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField(allow_null=True)
    channel = serializers.CharField()
    action = serializers.CharField()
    resource = AuditResourceSerializer()
    patient = serializers.IntegerField(allow_null=True)
    patients = serializers.ListField(child=serializers.IntegerField())
    outcome = serializers.ChoiceField(choices=["success", "refused", "not_found", "error"])
    request_id = serializers.CharField(allow_null=True)
    query = serializers.DictField(allow_null=True)
    detail = serializers.DictField(allow_null=True)

    def to_representation(self, instance: AuditRecord) -> dict[str, Any]:
        return audit_record_payload(instance)
