from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testing.auth_cache import auth_cache_clear


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Throttle counters and one-time codes live in Redis: every test starts clean."""
    auth_cache_clear()
    yield
    auth_cache_clear()


@pytest.fixture
def rates(settings: Any) -> Callable[..., None]:
    """``rates(login="2/min", ...)``: this test's throttle rates for the scopes named."""

    def set_rates(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                **scopes,
            },
        }

    return set_rates
