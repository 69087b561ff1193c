from __future__ import annotations

from django.urls import path

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
    path(
        "patients/<int:pk>/ctg-alarm-limits/",
        alert_views.PatientCtgAlarmLimitsView.as_view(),
        name="patient-ctg-alarm-limits",
    ),
]
