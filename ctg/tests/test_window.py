"""The product's CTG window (ctg.window): monitored time, monitoring sessions, and the reading
of a window whose monitoring began inside it."""

from __future__ import annotations

from ctg.analysis import INSUFFICIENT, NORMAL, Series, per_second
from ctg.params import CTG_LOOKBACK_SECONDS, CTG_WINDOW_SECONDS
from ctg.tests.traces import T0, Shape, fhr_trace, ua_trace
from ctg.window import CTG_WINDOW, CtgWindow, ctg_read, session_start

SPAN = CTG_WINDOW.span_seconds  # the look-back and the 30-minute window


def grids(minutes_before_end: float, *, lost: tuple[tuple[float, float], ...] = ()):
    """A normal trace (contractions every 3 minutes) that began ``minutes_before_end`` before
    the end of the loaded grid [END - SPAN, END), with no reading before it and none of either
    channel in the ``lost`` (start, end) seconds from its beginning."""
    end = T0 + SPAN
    begin = end - minutes_before_end * 60
    shift = begin - T0
    # An acceleration every 5 minutes: a reassuring trace whichever way it is read.
    rises = [Shape(s, 30, +25, 5, 5) for s in range(60, int(minutes_before_end * 60) - 60, 300)]
    fhr = [(t + shift, v) for t, v in fhr_trace(minutes_before_end, shapes=rises, lost=lost)]
    ua = [
        (t + shift, v)
        for t, v in ua_trace(minutes_before_end, every=180)
        if not any(lo <= t - T0 < hi for lo, hi in lost)
    ]
    start = end - SPAN
    return (
        per_second(fhr, start=start, end=end),
        per_second(ua, start=start, end=end),
        start,
        end,
    )


def test_a_bed_monitored_for_5_minutes_is_too_short_to_classify_not_signal_loss():
    fhr, ua, start, end = grids(5)
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.result.classification == INSUFFICIENT
    assert reading.result.reasons == [
        "Monitored for 5 minutes: too short to classify yet (needs 5 more minutes)."
    ]
    assert reading.needs_minutes == 5
    assert reading.monitored_seconds == 300
    assert reading.monitored_since == end - 300
    assert reading.window_start == end - 1800
    assert reading.result.signal_loss_percent == 0.0  # not "83 % missing"


def test_the_minutes_still_needed_count_down_to_a_classification():
    needs = []
    for minutes in (1, 4, 9.5):
        fhr, ua, start, end = grids(minutes)
        needs.append(ctg_read(fhr=fhr, ua=ua, start=start, end=end).needs_minutes)
    assert needs == [9, 6, 1]
    fhr, ua, start, end = grids(12)
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.needs_minutes is None
    assert reading.result.classification == NORMAL
    assert reading.result.baseline_bpm == 140
    assert reading.monitored_seconds == 720 and reading.result.signal_loss_percent == 0.0


def test_a_monitor_running_longer_than_the_window_is_read_over_the_whole_window():
    fhr, ua, start, end = grids(SPAN / 60)
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.monitored_seconds == 1800
    assert reading.result.start == end - 1800
    assert reading.offset == CTG_WINDOW.lookback_seconds
    assert reading.monitored_since == start  # as far back as the grid shows
    assert reading.result.classification == NORMAL


def test_a_dropout_shorter_than_the_session_gap_is_signal_loss_of_the_session():
    # 8 minutes without either channel, 20 to 12 minutes before the end: the same session.
    fhr, ua, start, end = grids(25, lost=((300, 780),))
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.monitored_seconds == 1500
    assert reading.result.signal_loss_percent == 32.0  # 480 of 1,500 monitored seconds


def test_a_gap_longer_than_the_session_gap_starts_a_new_session():
    # Monitored 25 minutes ago for 3 minutes, nothing for 14 minutes, back 8 minutes ago.
    fhr, ua, start, end = grids(25, lost=((180, 1020),))
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.monitored_since == end - 480
    assert reading.needs_minutes == 2
    assert reading.result.classification == INSUFFICIENT


def test_uterine_activity_alone_begins_the_session_and_fetal_loss_counts():
    fhr, ua, start, end = grids(15)
    fhr = [None] * len(fhr)  # the fetal transducer records nothing
    reading = ctg_read(fhr=fhr, ua=ua, start=start, end=end)
    assert reading.monitored_seconds == 900
    assert reading.result.signal_loss_percent == 100.0
    assert reading.result.classification == INSUFFICIENT


def test_no_reading_at_all_is_insufficient_signal_without_a_session():
    empty: Series = [None] * SPAN
    reading = ctg_read(fhr=empty, ua=empty, start=T0, end=T0 + SPAN)
    assert reading.monitored_since is None and reading.monitored_seconds == 0
    assert reading.needs_minutes is None
    assert reading.result.classification == INSUFFICIENT
    assert reading.result.signal_loss_percent == 100.0


def test_session_start_finds_the_last_session():
    x = 1.0
    assert session_start([None] * 5, [None] * 5, gap_seconds=2) is None
    assert session_start([x, None, None, x, x], [None] * 5, gap_seconds=2) == 0
    assert session_start([x, None, None, None, x], [None] * 5, gap_seconds=2) == 4
    assert (
        session_start([None, None, None, None, x], [x, None, None, None, None], gap_seconds=2) == 4
    )
    assert session_start([None, x, None, None, None], [None] * 5, gap_seconds=2) == 1


def test_a_window_of_another_length_keeps_the_rules():
    window = CTG_WINDOW.of_length(3600)
    assert window.seconds == 3600
    assert window.lookback_seconds == CTG_WINDOW.lookback_seconds
    assert window.session_gap_seconds == CTG_WINDOW.session_gap_seconds
    assert CtgWindow().span_seconds == CTG_WINDOW_SECONDS + CTG_LOOKBACK_SECONDS
