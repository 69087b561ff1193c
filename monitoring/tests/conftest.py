from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from monitoring.realtime import batcher


@pytest.fixture(autouse=True)
async def _batcher_closed_after_test():
    """Each test's event loop gets its own batcher; release the DB connections that the
    batcher's threads and the consumers' sync thread opened, so the test DB can be dropped."""
    yield
    await batcher.batcher_shutdown()
    await sync_to_async(connections.close_all)()
