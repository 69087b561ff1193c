from __future__ import annotations

import config.asgi  # noqa: F401  (installs the factory, as Daphne's import of the app does)


def test_daphne_fails_websocket_connections_with_a_close_frame():
    from daphne import server

    factory = server.WebSocketFactory(None, server="Daphne")  # as Server.run() builds it
    # What Daphne's Server.run() calls, with its own options.
    factory.setProtocolOptions(maxMessagePayloadSize=1024 * 1024, allowNullOrigin=True)
    assert factory.failByDrop is False
    assert factory.maxMessagePayloadSize == 1024 * 1024
    # Daphne still builds its own protocol from it, with the quiet data path.
    from daphne.ws_protocol import WebSocketProtocol

    assert issubclass(factory.protocol, WebSocketProtocol)
    assert factory.protocol.dataReceived is not WebSocketProtocol.dataReceived
