from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hl7v2.listener import MllpListener
from testing.hl7 import alert_manager  # noqa: F401  (a fixture of these tests)
from testing.ws import ingest_batchers_closed  # noqa: F401  (autouse for these tests)


@pytest.fixture
async def mllp() -> AsyncIterator[MllpListener]:
    """A real MLLP listener on a free port of this test's event loop (``.address``)."""
    listener = MllpListener()
    await listener.start("127.0.0.1", 0)
    yield listener
    await listener.stop()
