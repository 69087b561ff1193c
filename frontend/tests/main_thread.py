"""The page's own work on the browser's main thread, in CPU time.

The Long Tasks API measures wall time: on a busy machine the operating system preempts the
renderer in the middle of a task, and a short task reads as a long one. A trace of the
renderer's main thread gives each task's thread time (``tdur``, CPU time) beside its wall time
(``dur``), so a test judges what the page does rather than what the machine's load does to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

LONG_TASK_MS = 50.0  # the Long Tasks API's threshold


@dataclass
class MainThread:
    """The renderer main thread's tasks while the block ran: (wall ms, CPU ms) each."""

    tasks: list[tuple[float, float]] = field(default_factory=list)

    @property
    def long_tasks(self) -> list[float]:
        """CPU time of the tasks that took more than ``LONG_TASK_MS`` of it."""
        return [cpu for _, cpu in self.tasks if cpu > LONG_TASK_MS]

    @property
    def cpu_ms(self) -> float:
        return sum(cpu for _, cpu in self.tasks)


@contextmanager
def main_thread_traced(page) -> Iterator[MainThread]:
    """Trace the page's renderer main thread while the block runs (Chromium only)."""
    browser = page.context.browser
    # DevTools' timeline category: its "RunTask" events are the tasks its performance panel shows.
    browser.start_tracing(
        page=page, categories=["toplevel", "disabled-by-default-devtools.timeline"]
    )
    result = MainThread()
    try:
        yield result
    finally:
        events = json.loads(browser.stop_tracing())["traceEvents"]
        main = {
            (e["pid"], e["tid"])
            for e in events
            if e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
        }
        result.tasks = [
            (e["dur"] / 1000, e.get("tdur", e["dur"]) / 1000)
            for e in events
            if e.get("name") == "RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) in main
        ]
        if not result.tasks:
            raise AssertionError("the trace holds no task of the page's main thread")
