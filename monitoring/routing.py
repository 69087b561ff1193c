"""WebSocket routes (served through ``config.asgi``).

Channels routes ASGI applications with Django's ``path()``, which django-stubs types for views
only, and ``URLRouter`` is typed for a URLPattern subclass of types-channels' own: hence the
ignores here and where ``config.asgi`` builds the router.
"""

from __future__ import annotations

from django.urls import path

from monitoring.consumers import DashboardConsumer, DeviceConsumer

websocket_urlpatterns = [
    path("ws/devices/", DeviceConsumer.as_asgi()),  # type: ignore[arg-type]  # an ASGI app
    path("ws/dashboard/", DashboardConsumer.as_asgi()),  # type: ignore[arg-type]  # an ASGI app
]
