"""The window the product reads a CTG over, one for every reader: the alarm evaluator (the
alarms and the ward tiles), ``GET /api/patients/<id>/ctg/`` and the strip's header on the
patient page (which asks the API for the window ending at its right edge).

A reading of the trace is the analysis (``ctg.analysis``) of the window ending at a given
second, counted over the time the patient was monitored only:

- **The window**: ``CtgWindow.seconds`` (30 minutes: FIGO averages the contractions over 30
  minutes) ending at the given second; the reader loads ``lookback_seconds`` of trace before
  it as well (``ctg.params.CTG_LOOKBACK_SECONDS``): the analysis's context for the baseline
  and FIGO's time criteria, and where the monitoring session began.
- **A monitoring session** runs from the first second with a fetal heart rate or uterine
  activity reading (the cardiotocograph's two channels; a maternal pulse alone is not a CTG)
  to the last, and ends at a gap of more than ``session_gap_seconds`` (10 minutes: as long as
  a baseline period, so that a transducer taken off and put back later starts a new trace,
  while a shorter dropout is counted as signal loss of the session).
- **Monitored time** is the part of the window inside the current session (the last one that
  began before the window's end). Only it is classified, with the session's trace before it
  as context (a previous session's trace is another recording), so the signal loss is the
  share of the monitored seconds without a fetal heart rate: a monitor attached 5 minutes ago
  has not lost the 25 minutes before it.
- A session shorter than one baseline period (``CtgParams.period_seconds``, 10 minutes) is
  "too short to classify yet", with the minutes it still needs; the classification stays
  ``insufficient_signal`` (the contract's word for "no FIGO class can be given").

docs/ctg.md ("The window and monitored time") says the same for clinicians.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ctg.analysis import INSUFFICIENT, CtgParams, CtgResult, Series, ctg_analyse_series
from ctg.maternal import MaternalCapture, MaternalParams, maternal_capture
from ctg.params import CTG_LOOKBACK_SECONDS, CTG_WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class CtgWindow:
    """How much trace a reading covers; one instance (``CTG_WINDOW``) for every reader."""

    seconds: int = CTG_WINDOW_SECONDS
    # Trace read before the window: context for the baseline and FIGO's time criteria, and
    # where the monitoring session began (so at least ``session_gap_seconds``).
    lookback_seconds: int = CTG_LOOKBACK_SECONDS
    session_gap_seconds: int = 600

    def __post_init__(self) -> None:
        # A session that begins inside the window is told from one that began before it only
        # when the gap before it can be seen whole.
        assert self.lookback_seconds >= self.session_gap_seconds, "look back at least one gap"

    @property
    def span_seconds(self) -> int:
        """The seconds a reader loads: the look-back and the window."""
        return self.lookback_seconds + self.seconds

    def of_length(self, seconds: int) -> CtgWindow:
        """The same window rules over another length (the API's ``from``/``to``)."""
        return replace(self, seconds=seconds)


CTG_WINDOW = CtgWindow()


@dataclass(slots=True)
class CtgReading:
    """The reading of a window: the analysis of its monitored part and how long that was."""

    result: CtgResult  # over [analysed_from, end)
    window_start: float  # end - window seconds
    end: float
    monitored_since: float | None  # the current session's first second (None: no CTG at all)
    offset: int  # index in the loaded grid of ``result.start`` (to cut other series alike)
    fhr: Series  # the grid's FHR from ``result.start`` on (before any exclusion)
    # Maternal capture (``ctg.maternal``) from ``result.start`` on: the seconds flagged, and
    # those the maternal channel confirms (excluded from the analysis).
    maternal: MaternalCapture | None = None
    needs_minutes: int | None = None  # too short to classify: the minutes still needed

    @property
    def monitored_seconds(self) -> int:
        return round(self.result.end - self.result.start) if self.monitored_since else 0


def session_start(fhr: Series, ua: Series, *, gap_seconds: int) -> int | None:
    """Index of the first second of the last monitoring session in a one-second grid (a second
    with either channel; a gap of more than ``gap_seconds`` ends a session); None when there
    is no reading at all."""
    first: int | None = None
    previous: int | None = None
    for k in range(len(fhr) - 1, -1, -1):
        if fhr[k] is None and ua[k] is None:
            continue
        if previous is not None and previous - k - 1 > gap_seconds:
            break
        first = previous = k
    return first


def ctg_read(
    *,
    fhr: Series,
    ua: Series,
    start: float,
    end: float,
    window: CtgWindow = CTG_WINDOW,
    params: CtgParams | None = None,
    excluded: Sequence[bool] | None = None,
    mhr: Series | None = None,
    maternal_params: MaternalParams | None = None,
) -> CtgReading:
    """Read the window ending at ``end`` from the grid [start, end) of fetal heart rate and
    uterine activity (``ctg.analysis.per_second``; ``start`` whole seconds before ``end``,
    normally ``end - window.span_seconds``; less look-back is read as a session that began
    at the grid's start). ``excluded``: the analysis's mask of seconds whose FHR is not the
    fetus's, one per second of the grid. ``mhr``: the maternal heart rate on the same grid
    (None: not recorded); the session's trace is checked for maternal capture
    (``ctg.maternal``) with it, or without it from the fetal channel alone: the stretches the
    maternal channel confirms at a rate that passes for a fetal baseline are excluded from the
    analysis (the others are flagged but still analysed: a true deceleration or bradycardia
    must never be hidden). Reads, never changes, the series."""
    p = params or CtgParams()
    count = len(fhr)
    window_start = end - window.seconds
    first_window = max(0, count - window.seconds)
    session = session_start(fhr, ua, gap_seconds=window.session_gap_seconds)
    offset = first_window if session is None else max(first_window, session)
    context = 0 if session is None else session  # the session's own trace only
    analysed_from = start + offset
    capture = maternal_capture(
        fhr[context:], None if mhr is None else mhr[context:], params=maternal_params
    )
    if any(capture.excluded):
        maternal = [False] * context + capture.excluded
        excluded = (
            maternal
            if excluded is None
            else [a or b for a, b in zip(excluded, maternal, strict=True)]
        )
    result = ctg_analyse_series(
        fhr=fhr[context:],
        ua=ua[context:],
        start=start + context,
        end=end,
        params=p,
        excluded=None if excluded is None else excluded[context:],
        assess_from=analysed_from,
    )
    reading = CtgReading(
        result=result,
        window_start=window_start,
        end=end,
        monitored_since=None if session is None else start + session,
        offset=offset,
        fhr=fhr[offset:],
        maternal=capture.part(offset - context),
    )
    monitored = count - offset
    if session is not None and monitored < p.period_seconds:
        needs = math.ceil((p.period_seconds - monitored) / 60)
        reading.needs_minutes = needs
        result.classification = INSUFFICIENT
        result.reasons = [
            f"Monitored for {_minutes_text(monitored)}: too short to classify yet (needs "
            f"{needs} more {'minute' if needs == 1 else 'minutes'})."
        ]
    return reading


def _minutes_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} {'minute' if minutes == 1 else 'minutes'}"
