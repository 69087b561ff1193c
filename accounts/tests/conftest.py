from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.auth_cache import auth_cache_clear


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Throttle counters and one-time codes live in Redis: every test starts clean."""
    auth_cache_clear()
    yield
    auth_cache_clear()
