"""What the apps' Celery tasks share: the shape of a retry policy given to ``shared_task``."""

from __future__ import annotations

from typing import TypedDict


class RetryPolicy(TypedDict):
    """Keyword arguments of ``shared_task`` that make a task retry with backoff."""

    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    retry_jitter: bool
    max_retries: int
    acks_late: bool
