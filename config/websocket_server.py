"""How Daphne's WebSocket server fails a connection: with a close frame, not a dropped socket.

Autobahn, Daphne's WebSocket library, "fails by drop" by default: a frame above Daphne's
``--websocket-max-message-size`` (1 MiB), invalid UTF-8 in a text frame or a protocol violation
aborts the TCP connection without a close frame, and the client sees an abnormal closure (1006)
it cannot tell from a network fault. With ``failByDrop=False`` autobahn sends the close code
that RFC 6455 names (1009 message too big, 1007 invalid payload, 1002 protocol error) and then
closes. Daphne sets its protocol options in ``Server.run()`` and offers no setting for this one,
so its factory class is replaced by a subclass that adds the option.

The same subclass gives the factory a protocol that skips costs on the hot path:

- autobahn's ``dataReceived`` and ``sendData`` build their debug log line's arguments (with
  colour codes, through click) for every chunk received and every frame sent, before the logger
  drops them: about 4 % of the web process's time at 2,000 device frames/s;
- Twisted's TCP transport never writes at once: ``write()`` buffers, registers the socket with
  the event loop for writability (an ``epoll_ctl``) and writes on the loop's next turn, then
  unregisters it (another): 15 % of the event loop's samples at 2,000 acks/s. A frame sent
  while the transport has nothing buffered is written to the socket at once (Twisted's own
  ``writeSomeData``); what the socket does not take, and every frame behind buffered data, goes
  through ``write()`` as before, so the order of bytes and Twisted's flow control stay as
  they were. A TLS transport is always left to ``write()``.

docs/performance.md has the measurements.

Twisted's HTTP request, which Daphne's HTTP requests extend, parses a POST's
``multipart/form-data`` or form-encoded body itself (into ``request.args``, which Daphne never
reads: it hands the raw body to Django) and answers a body it cannot parse with a bare 400,
no body, no Content-Type, before Django sees it. Daphne's request class is replaced by one
that turns that parsing off, so Django parses the body and a malformed one gets the contract's
JSON error.

These are the places that reach inside Daphne (``config/tests/test_websocket_server.py``
breaks if an upgrade moves them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def _daphne_replace(module: str, name: str, replace: Callable[[Any], type], marker: str) -> None:
    """Put ``replace(original)`` in place of Daphne's class ``daphne.<module>.<name>``, once: not
    when the class there has the true attribute ``marker`` (a replacement already), nor when
    another ASGI server serves (no Daphne)."""
    try:
        daphne_module = importlib.import_module(f"daphne.{module}")
    except ImportError:
        return
    original = getattr(daphne_module, name)
    if not getattr(original, marker, False):
        setattr(daphne_module, name, replace(original))


def daphne_close_cleanly() -> None:
    """Make Daphne's WebSocket factory fail connections with a close frame (idempotent)."""
    _daphne_replace("server", "WebSocketFactory", _cleanly_closing, marker="closes_cleanly")


def _cleanly_closing(factory: Any) -> type:
    class QuietWebSocketProtocol(factory.protocol):
        def dataReceived(self, data: bytes) -> None:
            self._dataReceived(data)  # what autobahn's does, without its debug line

        def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
            if sync or chopsize or self.send_queue:
                super().sendData(data, sync, chopsize)  # autobahn's queued sending
                return
            # What autobahn's does for an unqueued frame, without its debug line.
            transport_write(self.transport, data)
            if self.state == self.STATE_OPEN:
                self.trafficStats.outgoingOctetsWireLevel += len(data)
            elif self.state in (self.STATE_CONNECTING, self.STATE_PROXY_CONNECTING):
                self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)
            if self.logOctets:
                self.logTxOctets(data, False)

    class CleanlyClosingWebSocketFactory(factory):
        closes_cleanly = True
        protocol = QuietWebSocketProtocol

        def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("failByDrop", False)
            super().setProtocolOptions(*args, **kwargs)

    return CleanlyClosingWebSocketFactory


def transport_write(transport: Any, data: bytes) -> None:
    """Write ``data`` to a Twisted transport: at once to the socket of a plain TCP connection
    that has nothing buffered, else (and for what the socket does not take) by ``write()``."""
    from twisted.internet import tcp

    if (
        isinstance(transport, tcp.Connection)
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport._tempDataBuffer
        and len(transport.dataBuffer) == transport.offset
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent > 0:
            if sent == len(data):
                return
            data = data[sent:]
        # Nothing written (the socket is full) or the connection is lost: write() buffers it,
        # and the loop's next write attempt finds the socket writable or the loss, as before.
    transport.write(data)


def daphne_body_untouched() -> None:
    """Make Daphne leave POST bodies to Django: no form parsing in Twisted (idempotent)."""
    # HTTPFactory.buildProtocol names the class at run time, by its module attribute.
    _daphne_replace("http_protocol", "WebRequest", _body_untouched, marker="leaves_body_to_django")


def _body_untouched(request_class: Any) -> type:
    class BodyUntouchedWebRequest(request_class):
        leaves_body_to_django = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(*args, **kwargs)

    return BodyUntouchedWebRequest
