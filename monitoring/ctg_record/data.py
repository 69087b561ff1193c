"""What one CTG record shows, read from the database: identity, the series on the one-second
grid, the strip notes and the analysis of each classified window."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from django.utils import timezone

from clinical.models import Patient
from clinical.selectors import patient_device
from ctg.analysis import CtgResult, Series, per_second
from ctg.maternal import maternal_channel
from ctg.window import CTG_WINDOW, ctg_read
from monitoring.models import Metric
from monitoring.notes import note_payload, notes_of_patient
from monitoring.selectors import readings_per_second

MAX_RECORD = timedelta(hours=24)


@dataclass
class RecordData:
    """What one record shows: identity, series on the one-second grid from ``start``, notes,
    and the analysis of each classified window."""

    patient_name: str
    mrn: str
    date_of_birth: date | None
    place: str
    ward: str
    bed: str
    monitor: str
    start: float  # epoch seconds
    end: float
    fhr: Series
    mhr: Series
    ua: Series
    notes: list[dict[str, Any]] = field(default_factory=list)
    windows: list[CtgResult] = field(default_factory=list)
    printed_at: datetime = field(default_factory=timezone.now)
    printed_by: str = ""
    tz: tzinfo = UTC


def record_windows(
    *, fhr: Series, ua: Series, mhr: Series, start: float, end: float, lookback: int
) -> list[CtgResult]:
    """The product's reading (``ctg.window.ctg_read``: the evaluator's window, look-back,
    monitored time and maternal capture) of each CTG_WINDOW's 30 minutes of [start, end), the
    last one shorter if the record ends sooner. The series begin ``lookback`` seconds before
    ``start`` on the one-second grid."""
    results = []
    t = start
    while t < end:
        window_end = min(end, t + CTG_WINDOW.seconds)
        window = CTG_WINDOW.of_length(math.ceil(window_end - t))
        stop = lookback + math.ceil(window_end - start)
        first = max(0, stop - window.span_seconds)
        results.append(
            ctg_read(
                fhr=fhr[first:stop],
                ua=ua[first:stop],
                mhr=mhr[first:stop],
                start=start - lookback + first,
                end=window_end,
                window=window,
            ).result
        )
        t = window_end
    return results


def ctg_record_data(
    *, patient: Patient, start: datetime, end: datetime, printed_by: str, tz: tzinfo | None = None
) -> RecordData:
    """Read what a record shows: the readings of [start, end) (and the lookback the analysis
    reads before it) in one query, the notes, the device."""
    lookback = CTG_WINDOW.lookback_seconds
    read_from = start - timedelta(seconds=lookback)
    raw = readings_per_second(patient_id=patient.id, start=read_from, end=end)
    t0, t1 = read_from.timestamp(), end.timestamp()
    fhr = per_second(raw[Metric.FETAL_HEART_RATE], start=t0, end=t1)
    ua = per_second(raw[Metric.UTERINE_ACTIVITY], start=t0, end=t1)
    mhr = maternal_channel(
        per_second(raw[Metric.HEART_RATE], start=t0, end=t1),
        per_second(raw[Metric.PULSE_RATE], start=t0, end=t1),
    )
    windows = record_windows(
        fhr=fhr, ua=ua, mhr=mhr, start=start.timestamp(), end=t1, lookback=lookback
    )
    device = patient_device(patient)
    ward = patient.ward
    return RecordData(
        patient_name=patient.name,
        mrn=patient.mrn,
        date_of_birth=patient.date_of_birth,
        place=patient.place.name,
        ward=ward.name if ward is not None else "",
        bed=patient.bed,
        monitor=f"{device.model or 'monitor'} {device.serial}" if device is not None else "none",
        start=start.timestamp(),
        end=t1,
        fhr=fhr[lookback:],
        mhr=mhr[lookback:],
        ua=ua[lookback:],
        notes=[
            note_payload(n) for n in notes_of_patient(patient_id=patient.id, start=start, end=end)
        ],
        windows=windows,
        printed_by=printed_by,
        tz=tz or timezone.get_current_timezone(),
    )
