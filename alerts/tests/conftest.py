from __future__ import annotations

from testing.ws import ingest_batchers_closed  # noqa: F401  (autouse for these tests)
