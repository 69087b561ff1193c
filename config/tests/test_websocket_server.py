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


class _Reactor:
    """What a Twisted TCP connection asks of its reactor when it writes: recorded."""

    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, selectable: object) -> None:
        if selectable not in self.writers:
            self.writers.append(selectable)

    def removeWriter(self, selectable: object) -> None:
        if selectable in self.writers:
            self.writers.remove(selectable)


@pytest.fixture
def tcp_pair():
    """A Twisted TCP connection on one end of a socket pair, and the other end."""
    import socket

    from twisted.internet import tcp
    from twisted.internet.protocol import Protocol

    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)
    reactor = _Reactor()
    transport = tcp.Connection(ours, Protocol(), reactor)  # type: ignore[arg-type]
    transport.connected = True
    yield transport, peer, reactor
    ours.close()
    peer.close()


def _read(peer, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = peer.recv(size - len(received))
        assert chunk, "the connection closed"
        received += chunk
    return received


def test_a_frame_is_written_at_once_when_nothing_is_buffered(tcp_pair):
    from config.websocket_server import transport_write

    transport, peer, reactor = tcp_pair
    transport_write(transport, b"ack-1")
    assert reactor.writers == []  # no round through the event loop
    assert _read(peer, 5) == b"ack-1"


def test_a_frame_behind_buffered_data_waits_its_turn(tcp_pair):
    from config.websocket_server import transport_write

    transport, peer, reactor = tcp_pair
    transport.write(b"first ")  # buffered by Twisted, not yet written
    transport_write(transport, b"second")
    assert reactor.writers == [transport]
    transport.doWrite()  # the loop finds the socket writable
    assert _read(peer, 12) == b"first second"


def test_what_a_full_socket_does_not_take_is_buffered_in_order(tcp_pair):
    import socket

    from config.websocket_server import transport_write

    transport, peer, reactor = tcp_pair
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
    transport_write(transport, data)
    assert reactor.writers == [transport]  # the rest waits for writability
    received = b""
    while len(received) < len(data):
        received += peer.recv(65536)
        if reactor.writers:
            transport.doWrite()
    assert received == data
    assert reactor.writers == []


def test_a_tls_transport_is_left_to_twisted(tcp_pair):
    from config.websocket_server import transport_write

    transport, _peer, _reactor = tcp_pair
    transport.TLS = True
    written: list[bytes] = []
    transport.write = written.append  # TLS: Twisted's write encrypts first
    transport_write(transport, b"secret")
    assert written == [b"secret"]


def test_daphne_protocol_writes_a_frame_at_once(tcp_pair):
    """Daphne's protocol (with the factory installed) sends a message frame straight to the
    socket: the peer has it without a turn of the event loop."""
    from collections import deque

    from autobahn.websocket.protocol import TrafficStats
    from daphne import server

    transport, peer, reactor = tcp_pair
    factory = server.WebSocketFactory(None, server="Daphne")
    factory.setProtocolOptions(allowNullOrigin=True)
    protocol = factory.buildProtocol(None)
    for name in protocol.CONFIG_ATTRS:  # what autobahn's connectionMade copies
        setattr(protocol, name, getattr(factory, name))
    protocol.transport = transport
    protocol.state = protocol.STATE_OPEN
    protocol.websocket_version = 13
    protocol._isMessageBegun = False
    protocol.send_queue = deque()  # what autobahn's connectionMade sets up
    protocol.trafficStats = TrafficStats()
    protocol.trackedTimings = None
    protocol._perMessageCompress = None
    protocol.send_state = protocol.SEND_STATE_GROUND
    protocol.sendMessage(b'{"type":"ack","seqs":[1]}', isBinary=False)
    assert reactor.writers == []
    frame = _read(peer, 2 + 25)
    assert frame[0] == 0x81 and frame[1] == 25  # FIN + text frame, unmasked, 25 bytes
    assert frame[2:] == b'{"type":"ack","seqs":[1]}'
    assert protocol.trafficStats.outgoingOctetsWireLevel == 27
