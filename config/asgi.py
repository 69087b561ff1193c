"""HTTP and WebSocket entry point, served by Daphne."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from monitoring.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator:
    """Cross-site WebSocket hijacking protection for browsers, which always send Origin.

    Channels' validator also refuses connections without an Origin header; bedside devices
    (and the simulator) send none and authenticate with their own token, so those pass.
    """

    def __init__(self, application) -> None:  # type: ignore[no-untyped-def]
        self.application = application
        self.validated = AllowedHostsOriginValidator(application)

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if any(name == b"origin" for name, _ in scope.get("headers", [])):
            return await self.validated(scope, receive, send)
        return await self.application(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
