"""The analysis's entry points: the exclusion mask and the preceding trace."""

from __future__ import annotations

import pytest

from ctg.analysis import ctg_analyse, per_second
from ctg.tests.traces import T0, Shape, fhr_trace


def test_excluded_seconds_are_set_aside_before_anything_is_read():
    # A 3-minute drop to 80 bpm (the maternal rate, say) from minute 15.
    fhr = fhr_trace(30, baseline=140, shapes=[Shape(900, 180, -60, 10, 10)])
    plain = ctg_analyse(fhr=fhr, start=T0, end=T0 + 1800)
    assert plain.decelerations
    mask = [900 <= k < 1080 for k in range(1800)]
    masked = ctg_analyse(fhr=fhr, start=T0, end=T0 + 1800, excluded=mask)
    assert masked.decelerations == []
    assert masked.excluded_percent == pytest.approx(10.0)
    assert masked.signal_loss_percent == pytest.approx(10.0)
    with pytest.raises(ValueError, match="one entry per second"):
        ctg_analyse(fhr=fhr, start=T0, end=T0 + 1800, excluded=mask[:-1])


def test_assess_from_classifies_the_window_after_its_context():
    fhr = fhr_trace(60, baseline=140)
    result = ctg_analyse(fhr=fhr, start=T0, end=T0 + 3600, assess_from=T0 + 1800)
    assert (result.start, result.end) == (T0 + 1800, T0 + 3600)
    assert result.baseline_bpm == 140
    assert per_second(fhr, start=T0, end=T0 + 3600)[0] is not None
