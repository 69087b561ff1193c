"""HTTP and WebSocket entry point, served by Daphne."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable
from django.core.asgi import get_asgi_application

if TYPE_CHECKING:
    # types-channels' WebSocket scope (asgiref's plus the keys channels adds).
    from channels.consumer import _ChannelScope

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from common.runtime import latency_tune  # noqa: E402
from config.websocket_server import daphne_body_untouched, daphne_close_cleanly  # noqa: E402
from monitoring.routing import websocket_urlpatterns  # noqa: E402
from operations.loop_lag import LoopLagMiddleware  # noqa: E402

# Before Daphne's Server.run(): frames above its size limit get close 1009, not a dropped socket.
daphne_close_cleanly()
# Before Daphne serves HTTP: Django, not Twisted, parses (and refuses) POST bodies.
daphne_body_untouched()


class BrowserOriginValidator:
    """Cross-site WebSocket hijacking protection for browsers, which always send Origin.

    Channels' validator also refuses connections without an Origin header; bedside devices
    (and the simulator) send none and authenticate with their own token, so those pass.
    """

    def __init__(self, application: ASGI3Application) -> None:
        self.application = application
        self.validated = AllowedHostsOriginValidator(application)

    async def __call__(
        self, scope: _ChannelScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if any(name == b"origin" for name, _ in scope.get("headers", [])):
            await self.validated(scope, receive, send)
        else:
            await self.application(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            URLRouter(websocket_urlpatterns)  # type: ignore[arg-type]  # see monitoring.routing
        ),
    }
)
# metrics: the event-loop lag watch starts with the first connection (operations/loop_lag.py)
application = LoopLagMiddleware(application)  # type: ignore[assignment]
# Last: what is loaded now stays out of the collector's sight (common/runtime.py).
latency_tune()
