"""Celery tasks run in-process for unit tests; a pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run Celery tasks in-process (unit tests); the end-to-end tests use a real worker."""
    from config.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
