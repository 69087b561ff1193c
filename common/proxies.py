"""Who the client is when the server sits behind a load balancer or reverse proxy.

``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are believed only when the
request comes straight from one of ``TRUSTED_PROXIES`` (IP addresses or networks). From anyone
else they are dropped before any other code sees them, so a client can neither pick the address
that throttles and lockouts count against, nor claim HTTPS (``SECURE_PROXY_SSL_HEADER``).

Behind trusted proxies ``REMOTE_ADDR`` becomes the client: the right-most address in
``X-Forwarded-For`` that is not itself a trusted proxy (each proxy appends the peer it saw;
what lies left of that was written by the client and proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from functools import lru_cache
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
RELAYED_UNTRUSTED = "PM_RELAYED_UNTRUSTED"  # a META key set when forwarded headers were dropped


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def is_trusted_proxy(address: str, networks: Iterable[Network] | None = None) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in (networks or trusted_networks()))


def client_address(meta: MutableMapping[str, Any]) -> str:
    """The client's address for this request's ``META`` (see the module docstring)."""
    peer = str(meta.get("REMOTE_ADDR", ""))
    networks = trusted_networks()
    if not networks or not is_trusted_proxy(peer, networks):
        return peer
    hops = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not is_trusted_proxy(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # a proxy wrote something that is no address: keep the peer
                return peer
    return hops[0] if hops else peer


def forwarded_headers_apply(meta: MutableMapping[str, Any]) -> None:
    """Believe the forwarded headers from a trusted proxy; drop them from anyone else."""
    peer = str(meta.get("REMOTE_ADDR", ""))
    if is_trusted_proxy(peer):
        meta["REMOTE_ADDR"] = client_address(meta)
        meta["PROXY_ADDR"] = peer
        return
    dropped = [header for header in FORWARDED_HEADERS if meta.pop(header, None) is not None]
    if dropped:
        # Not an HTTP_ key, so no client can set it: the request was relayed (or claims to be)
        # by a proxy that is not trusted; loopback-only resources must not take it as local.
        meta[RELAYED_UNTRUSTED] = True


@sync_and_async_middleware
def forwarded_headers_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """First in MIDDLEWARE: everything after it (HTTPS detection, throttles, lockouts, logs)
    sees the real client and only the forwarded headers a trusted proxy set."""
    if iscoroutinefunction(get_response):

        async def amiddleware(request: HttpRequest) -> HttpResponseBase:
            forwarded_headers_apply(request.META)
            response: Awaitable[HttpResponseBase] = get_response(request)
            return await response

        return amiddleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        forwarded_headers_apply(request.META)
        response: HttpResponseBase = get_response(request)
        return response

    return middleware
