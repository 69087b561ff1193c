"""A real HTTP server receiving alert webhooks (fixture ``webhook_server``): it keeps every
request it is sent and answers each with ``status``."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.webhooks import webhook_signature


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, WebhookServer)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append((dict(self.headers), body))
        self.send_response(server.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class WebhookServer(ThreadingHTTPServer):
    """Keeps the requests it is sent; answers each with ``status``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hooks/alerts"


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def webhook_verify(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does with a delivery's signature (docs: the webhook transport)."""
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, signature)
