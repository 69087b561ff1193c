"""Strip notes' requests and answers; no business rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from monitoring.notes import note_payload
from monitoring.serializers.records import AwareDateTimeField


class NoteAuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null once the account is gone.")
    name = serializers.CharField()


class NoteAddendumSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    author = NoteAuthorSerializer()
    created_at = serializers.DateTimeField()


class NoteSerializer(serializers.Serializer):
    """A strip note as ``monitoring.notes.note_payload`` renders it (REST and live frames)."""

    id = serializers.IntegerField()
    patient = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="The moment of the trace the note is about.")
    text = serializers.CharField()
    author = NoteAuthorSerializer()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(
        allow_null=True, help_text="When the author last corrected it, or null."
    )
    editable_until = serializers.DateTimeField(
        help_text="Until then its author may correct it; afterwards it is only annotated."
    )
    addenda = NoteAddendumSerializer(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return note_payload(instance)


class NoteInSerializer(serializers.Serializer):
    at = AwareDateTimeField(help_text="The moment of the trace (ISO-8601 with offset).")
    text = serializers.CharField(max_length=1000)


class NoteEditSerializer(serializers.Serializer):
    at = AwareDateTimeField(required=False)
    text = serializers.CharField(max_length=1000, required=False)


class NoteAddendumInSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=1000)
