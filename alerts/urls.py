from __future__ import annotations

from django.urls import include, path

from alerts import audio_views
from alerts import views as alert_views

# One alert: /api/alerts/<pk>/...
alert_urls = [
    path("", alert_views.AlertDetailView.as_view(), name="alert-detail"),
    path("acknowledge/", alert_views.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("resolve/", alert_views.AlertResolveView.as_view(), name="alert-resolve"),
]

# A ward's central-station alarm audio: /api/wards/<pk>/alarm-audio/...
alarm_audio_urls = [
    path("", audio_views.AlarmAudioView.as_view(), name="alarm-audio"),
    path("pause/", audio_views.AlarmAudioPauseView.as_view(), name="alarm-audio-pause"),
    path("resume/", audio_views.AlarmAudioResumeView.as_view(), name="alarm-audio-resume"),
    path("history/", audio_views.AlarmAudioHistoryView.as_view(), name="alarm-audio-history"),
]

# A patient's alarm settings: /api/patients/<pk>/...
patient_urls = [
    path(
        "alarm-limits/", alert_views.PatientAlarmLimitsView.as_view(), name="patient-alarm-limits"
    ),
    path(
        "ctg-alarm-limits/",
        alert_views.PatientCtgAlarmLimitsView.as_view(),
        name="patient-ctg-alarm-limits",
    ),
]

urlpatterns = [
    path("alerts/", alert_views.AlertListView.as_view(), name="alert-list"),
    path("alerts/<int:pk>/", include(alert_urls)),
    path("patients/<int:pk>/", include(patient_urls)),
    path("wards/<int:pk>/alarm-audio/", include(alarm_audio_urls)),
]
