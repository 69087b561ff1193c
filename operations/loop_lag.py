"""The event-loop lag of a web process: how late the loop runs what is due.

A task on the process's loop sleeps ``INTERVAL`` seconds again and again; how much longer each
sleep took than asked is the lag (a blocked loop, a busy GIL). The gauge
``monitor_event_loop_lag_seconds`` holds the largest lag of the last ``WINDOW`` samples (10 s),
so a scrape every 15 s still sees a stall between scrapes. The task costs one wake-up every
half second.

It starts with the first connection or request the process serves (Daphne gives the
application no start-up hook): :class:`LoopLagMiddleware` wraps the ASGI application.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from common import metrics

INTERVAL = 0.5
WINDOW = 20

_monitors: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


async def loop_lag_watch(
    *, interval: float = INTERVAL, window: int = WINDOW, samples: int | None = None
) -> None:
    """Measure the running loop's lag into the gauge, for ever (or ``samples`` times)."""
    loop = asyncio.get_running_loop()
    recent: deque[float] = deque(maxlen=window)
    taken = 0
    while samples is None or taken < samples:
        start = loop.time()
        await asyncio.sleep(interval)
        recent.append(max(0.0, loop.time() - start - interval))
        metrics.EVENT_LOOP_LAG.set(max(recent))
        taken += 1


def loop_lag_monitor_ensure() -> None:
    """Start the watch on the running loop unless it runs already."""
    loop = asyncio.get_running_loop()
    task = _monitors.get(loop)
    if task is None or task.done():
        for old in [other for other in _monitors if other.is_closed()]:
            del _monitors[old]
        _monitors[loop] = loop.create_task(loop_lag_watch(), name="event-loop-lag")


class LoopLagMiddleware:
    """ASGI middleware: makes sure the lag watch runs on the serving loop, then passes on."""

    def __init__(self, application: Callable[..., Any]) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if asyncio.get_running_loop() not in _monitors:
            loop_lag_monitor_ensure()
        return await self.application(scope, receive, send)
