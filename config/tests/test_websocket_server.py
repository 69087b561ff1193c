from __future__ import annotations

import pytest
import requests

import config.asgi  # noqa: F401  (installs the factory, as Daphne's import of the app does)
from testing.assertions import assert_error


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


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", [b"--xyz--\r\n", b"not multipart at all"])
def test_daphne_leaves_a_malformed_multipart_body_to_django(daphne_factory, body):
    # Found by the schemathesis run: Twisted parsed the body itself and answered a bare 400
    # (no body, no Content-Type) before Django saw the request.
    server = daphne_factory()
    response = requests.post(
        server.url("/api/auth/refresh/", scheme="http"),  # parses its body, not throttled
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        timeout=30,
    )
    assert response.headers.get("Content-Type") == "application/json", response.headers
    assert_error(response, 400)
