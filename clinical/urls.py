from __future__ import annotations

from rest_framework.routers import DefaultRouter

from clinical.views import DeviceViewSet, PatientViewSet, PlaceViewSet, WardViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("places", PlaceViewSet, basename="place")
router.register("wards", WardViewSet, basename="ward")
router.register("patients", PatientViewSet, basename="patient")
router.register("devices", DeviceViewSet, basename="device")

urlpatterns = router.urls
