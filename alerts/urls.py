from __future__ import annotations

from django.urls import path

from alerts import audio_views
from alerts import views as alert_views

urlpatterns = [
    path("alerts/", alert_views.AlertListView.as_view(), name="alert-list"),
    path("alerts/<int:pk>/", alert_views.AlertDetailView.as_view(), name="alert-detail"),
    path(
        "alerts/<int:pk>/acknowledge/",
        alert_views.AlertAcknowledgeView.as_view(),
        name="alert-acknowledge",
    ),
    path("alerts/<int:pk>/resolve/", alert_views.AlertResolveView.as_view(), name="alert-resolve"),
    path(
        "patients/<int:pk>/alarm-limits/",
        alert_views.PatientAlarmLimitsView.as_view(),
        name="patient-alarm-limits",
    ),
    path("wards/<int:pk>/alarm-audio/", audio_views.AlarmAudioView.as_view(), name="alarm-audio"),
    path(
        "wards/<int:pk>/alarm-audio/pause/",
        audio_views.AlarmAudioPauseView.as_view(),
        name="alarm-audio-pause",
    ),
    path(
        "wards/<int:pk>/alarm-audio/resume/",
        audio_views.AlarmAudioResumeView.as_view(),
        name="alarm-audio-resume",
    ),
    path(
        "wards/<int:pk>/alarm-audio/history/",
        audio_views.AlarmAudioHistoryView.as_view(),
        name="alarm-audio-history",
    ),
    path(
        "patients/<int:pk>/ctg-alarm-limits/",
        alert_views.PatientCtgAlarmLimitsView.as_view(),
        name="patient-ctg-alarm-limits",
    ),
]
