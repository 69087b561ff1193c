"""Test helpers for anything that goes through the login or password endpoints.

Throttle counters and one-time codes live in Redis and outlive a test's database rollback.
``auth_cache_clear`` deletes exactly those keys (not the whole Redis database, which also
holds the channel layer and the Celery broker of any live stack the test run started).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis import Redis

_PATTERNS = ("throttle_*", "otp:*")


def cache_redis(*, write: bool = False) -> Redis:
    """The Redis client behind the default cache (Django's own RedisCache backend)."""
    backend = caches["default"]
    assert isinstance(backend, RedisCache), backend
    return backend._cache.get_client(write=write)


def auth_cache_clear() -> int:
    client = cache_redis(write=True)
    keys = [key for pattern in _PATTERNS for key in client.scan_iter(match=cache.make_key(pattern))]
    if keys:
        client.delete(*keys)
    return len(keys)


@pytest.fixture
def clean_auth_cache() -> Iterator[None]:
    """Start and end the test with no throttle counters and no one-time codes."""
    auth_cache_clear()
    yield
    auth_cache_clear()
