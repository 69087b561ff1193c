from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.testing import auth_cache_clear


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Throttle counters and one-time codes live in Redis: every test starts clean."""
    auth_cache_clear()
    yield
    auth_cache_clear()


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape with the given status and code; returns the error body."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
