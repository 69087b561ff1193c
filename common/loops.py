"""One object per event loop: a server process runs one loop, and each test runs its own.

The live hub, the live feed and the ingest batcher each keep one instance per loop, made on
first use from the loop's own thread; instances of loops that have closed are dropped (and
closed, when a ``close`` is given) the next time one is made.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(
        self,
        make: Callable[[asyncio.AbstractEventLoop], T],
        *,
        close: Callable[[T], object] | None = None,
        stale: Callable[[T], bool] | None = None,
    ) -> None:
        self._make = make
        self._close = close
        self._stale = stale  # an instance that must be made again (its task ended)
        self._instances: dict[asyncio.AbstractEventLoop, T] = {}
        self._lock = threading.Lock()

    def get(self, loop: asyncio.AbstractEventLoop | None = None) -> T:
        """The instance of ``loop`` (default: the running loop), made on first use."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            instance = self._instances.get(loop)
            if instance is not None and not (self._stale and self._stale(instance)):
                return instance
            for old in [lp for lp in self._instances if lp.is_closed()]:
                gone = self._instances.pop(old)
                if self._close is not None:
                    self._close(gone)
            instance = self._instances[loop] = self._make(loop)
            return instance

    def existing(self, loop: asyncio.AbstractEventLoop) -> T | None:
        with self._lock:
            return self._instances.get(loop)

    def pop(self, loop: asyncio.AbstractEventLoop) -> T | None:
        with self._lock:
            return self._instances.pop(loop, None)

    def open_ones(self) -> list[T]:
        """The instances of the loops that are still open."""
        with self._lock:
            return [i for loop, i in self._instances.items() if not loop.is_closed()]
