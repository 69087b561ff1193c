"""Every Redis client of the server (beyond the cache and the channel layer, which settings
configure) is made here, with the timeouts named in config/settings.py.

Synchronous clients are kept per URL and timeout for the life of the process (redis-py's
connection pool notices a fork and opens new connections in the child); asyncio clients are
bound to the loop that uses them, so each call makes a new one.
"""

from __future__ import annotations

from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_client(
    *, timeout: float | None, url: str | None = None, retries: bool = True
) -> redis.Redis:
    """This process's client of ``url`` (default ``REDIS_URL``) whose calls give up after
    ``timeout`` seconds (None: never, e.g. a blocking ``XREADGROUP``). ``retries=False``: a
    call that times out or loses its connection raises at once (redis-py otherwise tries it
    three more times, with back-off: a hung Redis would cost four timeouts and seconds more)."""
    return _client(url or str(settings.REDIS_URL), timeout, settings.REDIS_CONNECT_TIMEOUT, retries)


@lru_cache(maxsize=16)
def _client(url: str, timeout: float | None, connect_timeout: float, retries: bool) -> redis.Redis:
    if retries:
        return redis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout, socket_timeout=timeout
        )
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def redis_client_once(*, timeout: float, url: str | None = None) -> redis.Redis:
    """A client for one check (health, metrics scrape): close it after use."""
    connect = min(timeout, settings.REDIS_CONNECT_TIMEOUT)
    return redis.Redis.from_url(
        url or str(settings.REDIS_URL), socket_connect_timeout=connect, socket_timeout=timeout
    )


def redis_client_async(
    *, timeout: float | None, url: str | None = None, retries: bool = True
) -> aioredis.Redis:
    """A new asyncio client for the calling loop. ``retries=False``: a lost connection raises
    at once instead of being reconnected inside redis-py (the live hub must see the gap)."""
    url = url or str(settings.REDIS_URL)
    connect = settings.REDIS_CONNECT_TIMEOUT
    if retries:
        return aioredis.Redis.from_url(url, socket_connect_timeout=connect, socket_timeout=timeout)
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=connect, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
