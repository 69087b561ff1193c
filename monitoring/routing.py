"""WebSocket routes (served through ``config.asgi``)."""

from __future__ import annotations

from django.urls import path

from monitoring.consumers import DashboardConsumer, DeviceConsumer

websocket_urlpatterns = [
    path("ws/devices/", DeviceConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
