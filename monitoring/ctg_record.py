"""The CTG record as a PDF: a labour's trace in the paper format clinicians file and read.

A4 landscape at 1 or 3 cm/min: the fetal heart rate on its 50-210 bpm grid with the 110-160
band shaded, the maternal heart rate on the same grid in its own colour, uterine activity
(0-100) below; time marks; the patient's identity, the place, the monitor and the page's time
span on every page; the clinicians' strip notes and the CTG analysis's events and FIGO
classification (``ctg.analysis``, window by window as the product classifies) along the trace;
seconds without a signal are gaps in the line.

Drawn with reportlab's canvas (a kept library: it writes a 12-hour record in a second or two,
docs/performance.md). ``ctg_record_data`` reads, ``ctg_record_render`` only draws, so the
drawing is tested and measured without a database; ``PageGeometry`` says where everything is,
for the tests that look at rendered pixels.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from django.utils import timezone
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import cm, mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from clinical.models import Patient
from clinical.selectors import patient_device
from ctg.analysis import CtgResult, Series, per_second
from ctg.maternal import maternal_channel
from ctg.window import CTG_WINDOW, ctg_read
from monitoring.models import Metric
from monitoring.notes import note_payload, notes_of_patient
from monitoring.selectors import readings_per_second

MAX_RECORD = timedelta(hours=24)
SPEEDS = (1, 3)  # cm/min
GAP_SECONDS = 2  # samples further apart than this are drawn as a gap (signal loss)

# Paper and ink. The grid is the familiar red-orange of CTG paper; notes are blue, so that
# they never pass for a trace or an event.
PAPER = HexColor("#ffffff")
GRID_MINOR = HexColor("#f4c7b8")
GRID_MAJOR = HexColor("#d9785a")
BAND = HexColor("#dcefdc")
FHR_INK = HexColor("#000000")
MHR_INK = HexColor("#b0006a")
UA_INK = HexColor("#000000")
NOTE_INK = HexColor("#1d4ed8")
TEXT_INK = HexColor("#1f2328")
ACCELERATION_INK = HexColor("#15803d")
DECELERATION_INK = HexColor("#c2410c")
CLASS_INK: dict[str, Color] = {
    "normal": HexColor("#15803d"),
    "suspicious": HexColor("#b45309"),
    "pathological": HexColor("#b91c1c"),
    "insufficient_signal": HexColor("#6b7280"),
}
FONT, BOLD = "Helvetica", "Helvetica-Bold"


@dataclass(frozen=True)
class PageGeometry:
    """Where a page draws what, in PDF points from the page's bottom-left corner."""

    speed: int
    width: float = landscape(A4)[0]
    height: float = landscape(A4)[1]
    chart_cm: int = 27  # the trace is 27 cm wide: 27 min a page at 1 cm/min, 9 at 3
    fhr_low: int = 50
    fhr_high: int = 210
    band: tuple[int, int] = (110, 160)
    fhr_height: float = 80 * mm  # 2 bpm per mm, a line every 10 bpm
    lane_height: float = 10 * mm  # time marks, classification and event letters
    ua_height: float = 40 * mm  # 2.5 units per mm, a line every 10
    top: float = 8 * mm
    header_height: float = 20 * mm

    @property
    def left(self) -> float:
        return float((self.width - self.chart_cm * cm) / 2)

    @property
    def right(self) -> float:
        return float(self.left + self.chart_cm * cm)

    @property
    def page_seconds(self) -> float:
        return self.chart_cm / self.speed * 60

    @property
    def fhr_top(self) -> float:
        return self.height - self.top - self.header_height

    @property
    def fhr_bottom(self) -> float:
        return self.fhr_top - self.fhr_height

    @property
    def ua_top(self) -> float:
        return self.fhr_bottom - self.lane_height

    @property
    def ua_bottom(self) -> float:
        return self.ua_top - self.ua_height

    @property
    def notes_top(self) -> float:
        return self.ua_bottom - 4 * mm

    def x(self, t: float, page_start: float) -> float:
        return float(self.left + (t - page_start) / 60 * self.speed * cm)

    def y_fhr(self, bpm: float) -> float:
        return (
            self.fhr_bottom
            + (bpm - self.fhr_low) / (self.fhr_high - self.fhr_low) * self.fhr_height
        )

    def y_ua(self, value: float) -> float:
        return float(self.ua_bottom + value / 100 * self.ua_height)

    def minor_seconds(self) -> float:
        """A vertical line every centimetre: each minute at 1 cm/min, 20 s at 3 cm/min."""
        return 60 / self.speed

    def major_seconds(self) -> float:
        """A bold line, with its time, every 10 minutes at 1 cm/min and every minute at 3."""
        return 600 if self.speed == 1 else 60


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


# --- Drawing ---------------------------------------------------------------------------------


def _clock(epoch: float, tz: tzinfo, fmt: str = "%H:%M") -> str:
    return datetime.fromtimestamp(epoch, tz=tz).strftime(fmt)


def _fit(text: str, width: float, font: str, size: float) -> str:
    """The text, cut with an ellipsis to fit ``width``."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


class _Page:
    def __init__(self, c: Canvas, g: PageGeometry, data: RecordData, start: float, end: float):
        self.c, self.g, self.data, self.start, self.end = c, g, data, start, end

    def draw(self, number: int, count: int) -> None:
        self.header(number, count)
        self.grid()
        self.classification()
        self.traces()
        self.events()
        self.notes()

    def header(self, number: int, count: int) -> None:
        c, g, d = self.c, self.g, self.data
        y = g.height - g.top - 4 * mm
        c.setFillColor(TEXT_INK)
        c.setFont(BOLD, 11)
        born = f" · born {d.date_of_birth:%d %b %Y}" if d.date_of_birth else ""
        c.drawString(g.left, y, _fit(f"{d.patient_name} · MRN {d.mrn}{born}", 150 * mm, BOLD, 11))
        c.setFont(FONT, 9)
        c.drawRightString(g.right, y, f"CTG record · page {number} of {count}")
        y -= 5 * mm
        where = " · ".join(p for p in (d.place, d.ward, f"bed {d.bed}" if d.bed else "") if p)
        c.drawString(g.left, y, _fit(f"{where} · monitor {d.monitor}", 170 * mm, FONT, 9))
        span = (
            f"{_clock(self.start, d.tz, '%d %b %Y %H:%M:%S')} to "
            f"{_clock(self.end, d.tz, '%H:%M:%S')} ({_clock(self.start, d.tz, '%Z')})"
        )
        c.drawRightString(g.right, y, f"{span} · {g.speed} cm/min")
        y -= 5 * mm
        c.setFont(FONT, 7.5)
        c.drawString(
            g.left,
            y,
            "FHR black, maternal HR magenta, 110-160 bpm shaded; notes blue; "
            "A acceleration, E/L/V early/late/variable deceleration, P prolonged; "
            "classification per 30-min window (FIGO 2015)",
        )
        printed = f"Printed {d.printed_at.astimezone(d.tz):%d %b %Y %H:%M}"
        c.drawRightString(g.right, y, printed + (f" by {d.printed_by}" if d.printed_by else ""))

    def grid(self) -> None:
        c, g = self.c, self.g
        c.setFillColor(BAND)
        c.rect(
            g.left,
            g.y_fhr(g.band[0]),
            g.right - g.left,
            g.y_fhr(g.band[1]) - g.y_fhr(g.band[0]),
            stroke=0,
            fill=1,
        )

        def hline(y: float, major: bool) -> None:
            c.setStrokeColor(GRID_MAJOR if major else GRID_MINOR)
            c.setLineWidth(0.7 if major else 0.35)
            c.line(g.left, y, g.right, y)

        for bpm in range(g.fhr_low, g.fhr_high + 1, 10):
            hline(g.y_fhr(bpm), bpm % 30 == 0)
        for value in range(0, 101, 10):
            hline(g.y_ua(value), value % 50 == 0)
        minor, major = g.minor_seconds(), g.major_seconds()
        first = math.ceil(self.start / minor) * minor
        c.setFont(FONT, 7)
        t = first
        while t <= self.start + g.page_seconds + 1e-6:
            is_major = abs(t / major - round(t / major)) < 1e-6
            x = g.x(t, self.start)
            c.setStrokeColor(GRID_MAJOR if is_major else GRID_MINOR)
            c.setLineWidth(0.7 if is_major else 0.35)
            c.line(x, g.fhr_bottom, x, g.fhr_top)
            c.line(x, g.ua_bottom, x, g.ua_top)
            if is_major:
                c.setFillColor(TEXT_INK)
                c.drawString(x + 1, g.fhr_bottom - 3 * mm, _clock(t, self.data.tz))
            t += minor
        # Scales on both sides.
        c.setFillColor(TEXT_INK)
        c.setFont(FONT, 7)
        for bpm in range(60, g.fhr_high + 1, 30):
            c.drawRightString(g.left - 1.5 * mm, g.y_fhr(bpm) - 2.5, str(bpm))
            c.drawString(g.right + 1.5 * mm, g.y_fhr(bpm) - 2.5, str(bpm))
        for value in (0, 50, 100):
            c.drawRightString(g.left - 1.5 * mm, g.y_ua(value) - 2.5, str(value))
            c.drawString(g.right + 1.5 * mm, g.y_ua(value) - 2.5, str(value))
        c.setFont(FONT, 6)
        c.drawRightString(g.left - 1.5 * mm, g.fhr_top + 1.5 * mm, "bpm")
        c.drawRightString(g.left - 1.5 * mm, g.ua_top + 1.5 * mm, "toco")
        c.setStrokeColor(GRID_MAJOR)
        c.setLineWidth(0.8)
        c.rect(g.left, g.fhr_bottom, g.right - g.left, g.fhr_height, stroke=1, fill=0)
        c.rect(g.left, g.ua_bottom, g.right - g.left, g.ua_height, stroke=1, fill=0)

    def _visible(self, t0: float, t1: float) -> tuple[float, float] | None:
        a, b = max(t0, self.start), min(t1, self.end)
        return (a, b) if b > a else None

    def classification(self) -> None:
        """Each analysis window's classification as a coloured bar in the lane below the FHR,
        with its words where the bar is long enough."""
        c, g = self.c, self.g
        y = g.ua_top + 1.5 * mm
        for result in self.data.windows:
            span = self._visible(result.start, result.end)
            if span is None:
                continue
            x0, x1 = g.x(span[0], self.start), g.x(span[1], self.start)
            ink = CLASS_INK.get(result.classification, TEXT_INK)
            c.setFillColor(ink)
            # A hair of paper between two windows, so that each window's bar reads as its own.
            c.rect(x0 + 0.6, y, max(x1 - x0 - 1.2, 0.5), 1.2 * mm, stroke=0, fill=1)
            words = [result.classification.replace("_", " ").capitalize()]
            if result.baseline_bpm is not None:
                words.append(f"baseline {result.baseline_bpm}")
            if result.variability_bpm is not None:
                words.append(f"variability {result.variability_bpm:g}")
            text = _fit(" · ".join(words), x1 - x0 - 2 * mm, BOLD, 7)
            if len(text) > 3:
                c.setFont(BOLD, 7)
                c.drawString(x0 + 1 * mm, y + 2 * mm, text)

    def traces(self) -> None:
        c, g, d = self.c, self.g, self.data
        first = max(0, int(self.start - d.start))
        last = min(len(d.fhr), math.ceil(self.end - d.start))
        # The hot loop of a long record (one point per second and channel): the geometry's
        # arithmetic inlined as two multiply-adds.
        x0 = g.x(d.start + first + 0.5, self.start)
        x_step = g.speed * cm / 60
        fhr_scale = g.fhr_height / (g.fhr_high - g.fhr_low)
        fhr_base = g.fhr_bottom - g.fhr_low * fhr_scale
        ua_scale = g.ua_height / 100
        low, high = g.fhr_low, g.fhr_high
        for series, base, scale, clamp, ink, width in (
            (d.mhr, fhr_base, fhr_scale, True, MHR_INK, 0.6),
            (d.fhr, fhr_base, fhr_scale, True, FHR_INK, 0.8),
            (d.ua, g.ua_bottom, ua_scale, False, UA_INK, 0.8),
        ):
            path = c.beginPath()
            move, line = path.moveTo, path.lineTo
            drawn = False
            last_i = -GAP_SECONDS - 1
            for i in range(first, last):
                v = series[i]
                if v is None:
                    continue
                if clamp:
                    v = low if v < low else high if v > high else v
                x = x0 + (i - first) * x_step
                if i - last_i > GAP_SECONDS:
                    move(x, base + v * scale)
                else:
                    line(x, base + v * scale)
                last_i = i
                drawn = True
            if drawn:
                c.setStrokeColor(ink)
                c.setLineWidth(width)
                c.drawPath(path, stroke=1, fill=0)

    def events(self) -> None:
        """Accelerations above the FHR trace's top edge, decelerations at its bottom, each with
        its letter, as the analysis found them."""
        c, g = self.c, self.g
        c.setFont(BOLD, 6.5)
        for result in self.data.windows:
            for acc in result.accelerations:
                span = self._visible(acc.start, acc.end)
                if span is None:
                    continue
                x0, x1 = g.x(span[0], self.start), g.x(span[1], self.start)
                c.setFillColor(ACCELERATION_INK)
                c.rect(x0, g.fhr_top - 1.5 * mm, max(x1 - x0, 0.5), 1.5 * mm, stroke=0, fill=1)
                c.drawString(x0, g.fhr_top - 4.2 * mm, "A")
            for dec in result.decelerations:
                span = self._visible(dec.start, dec.end)
                if span is None:
                    continue
                x0, x1 = g.x(span[0], self.start), g.x(span[1], self.start)
                c.setFillColor(DECELERATION_INK)
                c.rect(x0, g.fhr_bottom, max(x1 - x0, 0.5), 1.5 * mm, stroke=0, fill=1)
                letter = "P" if dec.prolonged else (dec.kind or "?")[0].upper()
                c.drawString(x0, g.fhr_bottom + 2.2 * mm, letter)

    def page_notes(self) -> list[tuple[int, dict[str, Any]]]:
        numbered = enumerate(self.data.notes, start=1)
        return [
            (n, note)
            for n, note in numbered
            if self.start <= datetime.fromisoformat(note["at"]).timestamp() < self.end
        ]

    def notes(self) -> None:
        """A blue line through both panels at each note's time with its number, and the notes
        written out below the trace."""
        c, g, d = self.c, self.g, self.data
        notes = self.page_notes()
        c.setFont(BOLD, 7)
        for n, note in notes:
            x = g.x(datetime.fromisoformat(note["at"]).timestamp(), self.start)
            c.setStrokeColor(NOTE_INK)
            c.setLineWidth(1.0)
            c.setDash(3, 2)
            c.line(x, g.ua_bottom, x, g.fhr_top)
            c.setDash()
            c.setFillColor(NOTE_INK)
            c.rect(x - 2.5 * mm, g.fhr_top + 0.5 * mm, 5 * mm, 3.2 * mm, stroke=0, fill=1)
            c.setFillColor(PAPER)
            c.drawCentredString(x, g.fhr_top + 1.3 * mm, str(n))
        y = g.notes_top
        bottom = 8 * mm
        line = 3.6 * mm
        width = g.right - g.left - 20 * mm
        c.setFont(FONT, 8)
        for position, (n, note) in enumerate(notes):
            lines = [
                (
                    f"{_clock(datetime.fromisoformat(note['at']).timestamp(), d.tz)}  "
                    f"{note['text']} ({note['author']['name']}, written "
                    f"{_clock(datetime.fromisoformat(note['created_at']).timestamp(), d.tz)})"
                )
            ] + [
                f"      addendum: {a['text']} ({a['author']['name']}, "
                f"{_clock(datetime.fromisoformat(a['created_at']).timestamp(), d.tz, '%d %b %H:%M')})"
                for a in note["addenda"]
            ]
            if y - line * len(lines) < bottom:
                c.setFillColor(TEXT_INK)
                c.drawString(
                    g.left,
                    y - line,
                    f"… {len(notes) - position} more notes on this page (the notes list has them all)",
                )
                return
            for i, text in enumerate(lines):
                y -= line
                c.setFillColor(NOTE_INK)
                if i == 0:
                    c.setFont(BOLD, 8)
                    c.drawString(g.left, y, f"{n}")
                    c.setFont(FONT, 8)
                c.setFillColor(TEXT_INK)
                c.drawString(g.left + 8 * mm, y, _fit(text, width, FONT, 8))


def ctg_record_pages(*, data: RecordData, speed: int) -> list[tuple[float, float]]:
    """The [start, end) of each page."""
    g = PageGeometry(speed=speed)
    pages = []
    t = data.start
    while t < data.end:
        pages.append((t, min(data.end, t + g.page_seconds)))
        t += g.page_seconds
    return pages or [(data.start, data.start + g.page_seconds)]


def ctg_record_render(*, data: RecordData, speed: int) -> bytes:
    """The record as PDF bytes, one page per ``PageGeometry.page_seconds`` of trace."""
    g = PageGeometry(speed=speed)
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=(g.width, g.height), pageCompression=1)
    c.setTitle(f"CTG record {data.patient_name} ({data.mrn})")
    c.setAuthor(data.printed_by or "Patient Monitor")
    c.setSubject(
        f"{_clock(data.start, data.tz, '%Y-%m-%d %H:%M')} to {_clock(data.end, data.tz, '%Y-%m-%d %H:%M')}"
    )
    pages = ctg_record_pages(data=data, speed=speed)
    for number, (start, end) in enumerate(pages, start=1):
        _Page(c, g, data, start, end).draw(number, len(pages))
        c.showPage()
    c.save()
    return buffer.getvalue()
