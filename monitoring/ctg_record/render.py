"""Drawing a CTG record (``RecordData``) onto PDF pages with reportlab's canvas; no database."""

from __future__ import annotations

import io
import math
from datetime import datetime, tzinfo
from typing import Any

from reportlab.lib.colors import Color
from reportlab.lib.units import cm, mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from ctg.analysis import Acceleration, Deceleration
from monitoring.ctg_record.data import RecordData
from monitoring.ctg_record.paper import (
    ACCELERATION_INK,
    BAND,
    BOLD,
    CLASS_INK,
    DECELERATION_INK,
    FHR_INK,
    FONT,
    GAP_SECONDS,
    GRID_MAJOR,
    GRID_MINOR,
    MHR_INK,
    NOTE_INK,
    PAPER,
    TEXT_INK,
    UA_INK,
    PageGeometry,
)


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
                top = g.fhr_top
                self._event(acc, ACCELERATION_INK, "A", bar_y=top - 1.5 * mm, text_y=top - 4.2 * mm)
            for dec in result.decelerations:
                letter = "P" if dec.prolonged else (dec.kind or "?")[0].upper()
                bottom = g.fhr_bottom
                self._event(dec, DECELERATION_INK, letter, bar_y=bottom, text_y=bottom + 2.2 * mm)

    def _event(
        self,
        event: Acceleration | Deceleration,
        ink: Color,
        letter: str,
        *,
        bar_y: float,
        text_y: float,
    ) -> None:
        """One event (its visible part, from ``event.start`` to ``event.end``) as a bar 1.5 mm
        high (and at least 0.5 pt wide) from ``bar_y``, with its letter at ``text_y``."""
        span = self._visible(event.start, event.end)
        if span is None:
            return
        c, g = self.c, self.g
        x0, x1 = g.x(span[0], self.start), g.x(span[1], self.start)
        c.setFillColor(ink)
        c.rect(x0, bar_y, max(x1 - x0, 0.5), 1.5 * mm, stroke=0, fill=1)
        c.drawString(x0, text_y, letter)

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
