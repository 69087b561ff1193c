"""How Daphne's WebSocket server fails a connection: with a close frame, not a dropped socket.

Autobahn, Daphne's WebSocket library, "fails by drop" by default: a frame above Daphne's
``--websocket-max-message-size`` (1 MiB), invalid UTF-8 in a text frame or a protocol violation
aborts the TCP connection without a close frame, and the client sees an abnormal closure (1006)
it cannot tell from a network fault. With ``failByDrop=False`` autobahn sends the close code
that RFC 6455 names (1009 message too big, 1007 invalid payload, 1002 protocol error) and then
closes. Daphne sets its protocol options in ``Server.run()`` and offers no setting for this one,
so its factory class is replaced by a subclass that adds the option; this is the one place
that reaches inside Daphne (``config/tests/test_websocket_server.py`` breaks if an upgrade
moves it).

The same subclass gives the factory a protocol that skips one cost on the hot path: autobahn's
``dataReceived`` builds its debug log line's arguments (with colour codes, through click) for
every chunk a socket delivers before the logger drops it, about 4 % of the web process's time
at 2,000 device frames/s (docs/performance.md).
"""

from __future__ import annotations

from typing import Any


def daphne_close_cleanly() -> None:
    """Make Daphne's WebSocket factory fail connections with a close frame (idempotent)."""
    try:
        from daphne import server
    except ImportError:  # served by another ASGI server
        return
    factory: Any = server.WebSocketFactory
    if getattr(factory, "closes_cleanly", False):
        return

    class QuietWebSocketProtocol(factory.protocol):
        def dataReceived(self, data: bytes) -> None:
            self._dataReceived(data)  # what autobahn's does, without its debug line

    class CleanlyClosingWebSocketFactory(factory):
        closes_cleanly = True
        protocol = QuietWebSocketProtocol

        def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("failByDrop", False)
            super().setProtocolOptions(*args, **kwargs)

    server.WebSocketFactory = CleanlyClosingWebSocketFactory
