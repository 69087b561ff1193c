"""The CTG windows an evaluator process keeps: per obstetric patient, the evaluator's window
and its look-back (``ctg.window.CTG_WINDOW``: 90 minutes) of fetal heart rate, uterine
activity and maternal heart rate on the one-second grid, so that an evaluation (every
``ALARM_CTG_EVALUATE_SECONDS``) reads from the database only the seconds that may have
changed since the last one, not the whole window (about 16,000 grouped rows).

Every second the cache holds is what ``monitoring.selectors.readings_per_second`` gives for
it, because a second is only ever filled from that query over whole seconds. Which seconds
are read again (the *delta*, from the earliest of):

- the seconds after the window's cached end;
- the earliest second of every reading of the patient seen in a batch since the last
  evaluation (a late or resent reading for a second already held, including the batches of
  patients not due);
- the same again for the readings seen before the previous evaluation: a reading is in the
  stream before its transaction commits, so the query right after its batch may not see it
  yet; the next one does (this is also when the uncached evaluation saw it).

The readings of a batch stand in for their rows until the database returns them (*pending*):
a batch can reach the evaluator before its transaction commits, and the query then misses it.
A second the query returned without a value takes the mean of the pending readings of that
second, in the series handed out (the cache's own grids keep only what the database gave);
the earliest pending second is read again at every evaluation until the database has it, and
a pending reading is dropped after ``PENDING_SECONDS`` (its transaction rolled back, or it
is so late that the periodic refresh is the remedy). Without this, a monitor's last batch
read before its commit would leave the patient classified as a window without signal until
the next reading, however long that is.

A patient's window is read whole (a *refresh*) when the process holds none for it (first
evaluation, after a restart), when the delta would reach the window's start anyway, when the
window moved backwards, every ``REFRESH_SECONDS`` (bounds any drift, such as a transaction
that took longer than an evaluation interval to commit, or readings deleted), and when no
reading of the patient reached this process for ``FORGET_SECONDS``: its partition may have
been evaluated by another process meanwhile (readings this one never saw), or its monitor
stopped. Such a patient is forgotten, as are the least recently seen beyond
``MAX_PATIENTS`` (the memory bound: about 500 kB per patient).

The cache is per process and only a hint: nothing is shared, and an empty cache (a restart)
only costs full reads.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ctg.analysis import Series
from monitoring.selectors import CTG_METRICS, readings_per_second

REFRESH_SECONDS = 300.0
FORGET_SECONDS = 5.0
MAX_PATIENTS = 500
PENDING_SECONDS = 30.0


@dataclass(slots=True)
class _Window:
    seen_at: float  # monotonic time a reading of the patient was last seen
    grids: dict[str, Series] | None = None  # per metric, the seconds [start, end)
    start: int = 0
    end: int = 0
    refreshed_at: float = 0.0
    dirty_from: int | None = None  # earliest second seen since the last read
    recheck_from: int | None = None  # ... and as it was at the last read
    last_read: str = ""  # "refresh" (the whole window) or "delta"
    # Readings seen in batches that the database has not returned yet: per metric, per epoch
    # second, [sum, count, monotonic time last seen].
    pending: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def pending_from(self) -> int | None:
        """The earliest pending second (read again until the database has it)."""
        return min((min(seconds) for seconds in self.pending.values() if seconds), default=None)


class CtgWindows:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
        forget_seconds: float = FORGET_SECONDS,
        max_patients: int = MAX_PATIENTS,
        pending_seconds: float = PENDING_SECONDS,
    ) -> None:
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.forget_seconds = forget_seconds
        self.pending_seconds = pending_seconds
        self.max_patients = max_patients
        self._windows: OrderedDict[int, _Window] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        return len(self._windows)

    def last_read(self, patient_id: int) -> str | None:
        """How the patient's window was last read ("refresh" or "delta"), None if not held."""
        window = self._windows.get(patient_id)
        return window.last_read if window is not None else None

    def clear(self) -> None:
        self._windows.clear()

    def seen(
        self,
        earliest: Mapping[int, datetime],
        *,
        keep: Iterable[int],
        readings: Mapping[int, Sequence[Any]] | None = None,
    ) -> None:
        """Note a batch: ``earliest`` the earliest ``recorded_at`` of its readings of the CTG
        metrics per patient; ``keep`` the patients to start a window for (those with fetal
        readings: a heart-rate reading alone does not make a patient obstetric);
        ``readings`` those readings per patient (``metric``, ``value``, ``recorded_at``), kept
        as pending until the database returns their seconds."""
        now = self.clock()
        self._forget(now)
        keep = set(keep)
        for patient_id, at in earliest.items():
            window = self._windows.get(patient_id)
            if window is None:
                if patient_id not in keep:
                    continue
                window = self._windows[patient_id] = _Window(seen_at=now)
            second = int(at.timestamp() // 1)
            if window.dirty_from is None or second < window.dirty_from:
                window.dirty_from = second
            window.seen_at = now
            for reading in (readings or {}).get(patient_id, ()):
                pending = window.pending.setdefault(reading.metric, {})
                entry = pending.setdefault(int(reading.recorded_at.timestamp() // 1), [0.0, 0, now])
                entry[0] += reading.value
                entry[1] += 1
                entry[2] = now
            self._windows.move_to_end(patient_id)
        while len(self._windows) > self.max_patients:
            self._windows.popitem(last=False)

    def _forget(self, now: float) -> None:
        while self._windows:
            patient_id, window = next(iter(self._windows.items()))
            if now - window.seen_at <= self.forget_seconds:
                break
            del self._windows[patient_id]

    def series(self, *, patient_id: int, start: datetime, end: datetime) -> dict[str, Series]:
        """Per CTG metric, the patient's seconds [start, end) (whole seconds) on the one-second
        grid, as ``ctg.analysis.per_second`` gives them from ``readings_per_second``: one
        query. The lists are the cache's own: read them, never change them."""
        lo, hi = int(start.timestamp()), int(end.timestamp())
        assert lo == start.timestamp() and hi == end.timestamp(), "whole seconds only"
        now = self.clock()
        window = self._windows.get(patient_id)
        if window is None:
            window = _Window(seen_at=now)
        since = lo
        grids = window.grids
        if (
            grids is not None
            and now - window.refreshed_at < self.refresh_seconds
            and hi >= window.end
            and lo >= window.start
        ):
            marks = (window.end, window.dirty_from, window.recheck_from, window.pending_from())
            since = max(lo, min(m for m in marks if m is not None))
        if since <= lo or grids is None:
            since, grids = lo, {m: [None] * (hi - lo) for m in CTG_METRICS}
            refreshed = True
        else:
            shift = lo - window.start
            keep = since - lo  # the seconds before ``since`` stay as they are
            grids = {m: g[shift : shift + keep] + [None] * (hi - since) for m, g in grids.items()}
            refreshed = False
        rows = readings_per_second(
            patient_id=patient_id,
            start=datetime.fromtimestamp(since, UTC),
            end=datetime.fromtimestamp(hi, UTC),
        )
        for metric, samples in rows.items():
            grid = grids[metric]
            for t, value in samples:
                grid[int(t) - lo] = value
        # Only now (the read succeeded) does the window move on.
        window.grids, window.start, window.end = grids, lo, hi
        if refreshed:
            window.refreshed_at = now
        window.recheck_from, window.dirty_from = window.dirty_from, None
        window.last_read = "refresh" if refreshed else "delta"
        if patient_id not in self._windows:
            self._windows[patient_id] = window
            while len(self._windows) > self.max_patients:
                self._windows.popitem(last=False)
        return self._with_pending(window, grids, lo=lo, now=now)

    def _with_pending(
        self, window: _Window, grids: dict[str, Series], *, lo: int, now: float
    ) -> dict[str, Series]:
        """``grids`` with the seconds the database did not return filled from the pending
        readings (copies of the grids that change); the pending readings the database now
        holds, that left the window or that waited too long are dropped."""
        out = grids
        for metric, seconds in list(window.pending.items()):
            grid = grids.get(metric)
            for second, (total, count, seen_at) in list(seconds.items()):
                k = second - lo
                if grid is None or k < 0 or now - seen_at > self.pending_seconds:
                    del seconds[second]
                elif k >= len(grid):
                    continue  # after the window read: for a later evaluation
                elif grid[k] is not None:
                    del seconds[second]  # committed: the database's value counts
                else:
                    if out is grids:
                        out = dict(grids)
                    if out[metric] is grid:
                        out[metric] = list(grid)
                    out[metric][k] = total / count
            if not seconds:
                del window.pending[metric]
        return out


ctg_windows = CtgWindows()  # this process's
