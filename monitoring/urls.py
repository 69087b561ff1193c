from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from monitoring.views import DeviceViewSet, RecordHistoryView, RecordsView

router = SimpleRouter()
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = [
    *router.urls,
    path("records/", RecordsView.as_view(), name="records"),
    path("records/<int:patient_id>/", RecordHistoryView.as_view(), name="record-history"),
]
