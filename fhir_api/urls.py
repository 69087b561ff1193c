from __future__ import annotations

from django.urls import path, re_path

from fhir_api import views
from fhir_api.audit_events import AuditEventSearchView

app_name = "fhir"

_ID = r"(?P<id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    re_path(r"^Patient/?$", views.PatientSearchView.as_view(), name="patient-search"),
    re_path(rf"^Patient/{_ID}/?$", views.PatientReadView.as_view(), name="patient"),
    re_path(r"^Device/?$", views.DeviceSearchView.as_view(), name="device-search"),
    re_path(rf"^Device/{_ID}/?$", views.DeviceReadView.as_view(), name="device"),
    re_path(r"^Observation/?$", views.ObservationSearchView.as_view(), name="observation-search"),
    re_path(rf"^Observation/{_ID}/?$", views.ObservationReadView.as_view(), name="observation"),
    re_path(r"^Flag/?$", views.FlagSearchView.as_view(), name="flag-search"),
    re_path(rf"^Flag/{_ID}/?$", views.FlagReadView.as_view(), name="flag"),
    re_path(r"^AuditEvent/?$", AuditEventSearchView.as_view(), name="auditevent-search"),
    re_path(r"^(?P<rest>.*)$", views.UnknownView.as_view(), name="unknown"),
]
