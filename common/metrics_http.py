"""Serving the metrics: who may read them, in which format, and the exporter port of the
processes that serve no HTTP themselves (the alarm evaluator, the Celery worker).

One access rule for the web view (``operations.views.metrics``) and the exporter: a request
from loopback with no forwarding header, or one with ``Authorization: Bearer <METRICS_TOKEN>``.
A request relayed by a proxy on the same machine arrives from loopback too, so a forwarding
header (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) makes it an outside request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from common.errors import ApplicationError, NotAuthenticated, PermissionDenied
from common.proxies import RELAYED_UNTRUSTED

logger = logging.getLogger(__name__)

# Header names as WSGI / Django ``META`` keys.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def metrics_access_error(meta: Mapping[str, Any]) -> ApplicationError | None:
    """None when the request (a WSGI environ or Django's ``request.META``) may read the
    metrics; else the error to answer (401 with a token configured, 403 without one)."""
    token = settings.METRICS_TOKEN
    header = str(meta.get("HTTP_AUTHORIZATION", ""))
    scheme, _, credential = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credential.strip(), token):
        return None
    # A proxy's request arrives from loopback too: forwarded headers (or ones the forwarded-
    # headers middleware dropped, or a trusted proxy's hop) make it an outside request.
    relayed = any(meta.get(name) for name in (*FORWARDING_HEADERS, RELAYED_UNTRUSTED, "PROXY_ADDR"))
    if _is_loopback(str(meta.get("REMOTE_ADDR", ""))) and not relayed:
        return None
    if not token:
        return PermissionDenied(
            "Metrics are served to loopback only (no METRICS_TOKEN is configured).",
        )
    return NotAuthenticated("Send Authorization: Bearer <METRICS_TOKEN> to read the metrics.")


def metrics_registry() -> Collector:
    """What this process exposes: its own registry, or, in multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR`` set), the values every process of the directory wrote."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_render(registry: Collector, accept: str = "") -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when the scraper asks) and its type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


# --- The exporter port ----------------------------------------------------------------------


class _Registries:
    """The registry plus collectors that only an exporter process adds (stream lag, queues)."""

    def __init__(self, base: Collector, extra: Iterable[Collector]) -> None:
        self.base = base
        self.extra = list(extra)

    def collect(self) -> Iterable[Any]:
        yield from self.base.collect()
        for collector in self.extra:
            try:
                yield from collector.collect()
            except Exception:  # Redis down: the scrape still answers with the rest
                logger.exception("metrics collector %r failed", collector)


def metrics_wsgi_app(registry: Collector) -> Callable[..., list[bytes]]:
    """A WSGI app that serves ``registry`` on any path under the access rule above."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        error = metrics_access_error(environ)
        if error is not None:
            body = json.dumps(error.as_dict()).encode()
            headers = [("Content-Type", "application/json")]
            if error.status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
            start_response(
                f"{error.status} {'Unauthorized' if error.status == 401 else 'Forbidden'}", headers
            )
            return [body]
        output, content_type = metrics_render(registry, environ.get("HTTP_ACCEPT", ""))
        start_response("200 OK", [("Content-Type", content_type)])
        return [output]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape is noise
        pass


def metrics_exporter_start(
    *, port: int, address: str | None = None, extra: Iterable[Collector] = ()
) -> WSGIServer:
    """Serve this process's metrics on ``address:port`` (``METRICS_ADDR``, loopback by
    default) in a daemon thread; ``port=0`` picks a free one (``server.server_port``)."""
    registry = _Registries(metrics_registry(), extra)
    server = make_server(
        address or settings.METRICS_ADDR,
        port,
        metrics_wsgi_app(registry),
        server_class=_Server,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True)
    thread.start()
    logger.info("metrics exporter listening on %s:%d", server.server_address[0], server.server_port)
    return server
