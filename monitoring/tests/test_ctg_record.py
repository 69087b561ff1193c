"""GET /api/patients/<id>/ctg.pdf: the window's validation and scoping, and the pages themselves,
rendered to pixels with poppler's pdftoppm: grid, band, trace, gaps and notes where they belong."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from ctg.tests.traces import T0, Shape, fhr_trace, ua_trace
from monitoring.ctg_record.data import RecordData
from monitoring.ctg_record.paper import CLASS_INK, FHR_INK, GRID_MAJOR, NOTE_INK, PageGeometry
from monitoring.ctg_record.render import ctg_record_render
from monitoring.models import StripNote
from testing.assertions import assert_error
from testing.clients import bearer_client
from testing.factories import PatientFactory, PlaceFactory, UserFactory, WardFactory, samples_store

pytestmark = pytest.mark.django_db

DPI = 100
PDFTOPPM = shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(
    PDFTOPPM is None, reason="pdftoppm (Debian package poppler-utils) is not installed"
)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def _url(patient, start: datetime | None, end: datetime | None, speed: int | str = 1) -> str:
    params = [f"speed={speed}"]
    if start is not None:
        params.append(f"from={quote(start.isoformat())}")
    if end is not None:
        params.append(f"to={quote(end.isoformat())}")
    return f"/api/patients/{patient.id}/ctg.pdf?" + "&".join(params)


class Pixels:
    """One rendered page (PPM from pdftoppm), looked up in PDF points."""

    def __init__(self, path: Path, geometry: PageGeometry) -> None:
        data = path.read_bytes()
        parts = data.split(maxsplit=4)
        assert parts[0] == b"P6"
        self.w, self.h = int(parts[1]), int(parts[2])
        self.raw = parts[4]
        self.scale = DPI / 72
        self.g = geometry

    def at(self, x_pt: float, y_pt: float) -> tuple[int, int, int]:
        px = min(self.w - 1, round(x_pt * self.scale))
        py = min(self.h - 1, round((self.g.height - y_pt) * self.scale))
        i = (py * self.w + px) * 3
        return self.raw[i], self.raw[i + 1], self.raw[i + 2]

    def around(self, x_pt: float, y_pt: float) -> list[tuple[int, int, int]]:
        """The pixels within a pixel of a point (a thin line is anti-aliased over two)."""
        step = 1 / self.scale
        return [
            self.at(x_pt + dx * step, y_pt + dy * step) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
        ]

    def column(self, x_pt: float, y_from: float, y_to: float) -> list[tuple[int, int, int]]:
        steps = int(abs(y_to - y_from) * self.scale)
        return [
            self.at(x_pt, y_from + (y_to - y_from) * k / max(1, steps)) for k in range(steps + 1)
        ]


def _near(rgb: tuple[int, int, int], colour, tolerance: int = 60) -> bool:
    target = (round(colour.red * 255), round(colour.green * 255), round(colour.blue * 255))
    return sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) <= tolerance


def _pages(pdf: bytes, tmp_path: Path) -> list[Path]:
    source = tmp_path / "record.pdf"
    source.write_bytes(pdf)
    assert PDFTOPPM is not None
    subprocess.run([PDFTOPPM, "-r", str(DPI), source, tmp_path / "page"], check=True)
    return sorted(tmp_path.glob("page-*.ppm"))


@pytest.fixture
def labour(obstetric_patient, nurse):
    """40 minutes: a 140 bpm baseline, a prolonged deceleration at 25 min, the signal lost for
    minutes 12-13, contractions every 3 minutes, a note at minute 6."""
    samples_store(
        obstetric_patient,
        fhr_trace(40, shapes=[Shape(1500, 240, -40)], lost=[(720, 780)], amplitude=3),
        "fetal_heart_rate",
    )
    samples_store(obstetric_patient, ua_trace(40, every=180), "uterine_activity")
    StripNote.objects.create(
        patient=obstetric_patient,
        at=_at(360),
        text="Vaginal examination 6 cm",
        author=nurse,
        author_name=nurse.get_full_name(),
    )
    return obstetric_patient


class TestRequests:
    def test_the_record_is_a_pdf_with_a_filename(self, nurse_api, labour):
        response = nurse_api.get(_url(labour, _at(0), _at(2400)))
        assert response.status_code == 200, response.content[:300]
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
        assert "filename=" in response["Content-Disposition"]

    def test_a_browser_asking_for_pdf_still_gets_errors_as_json(self, nurse_api, labour):
        response = nurse_api.get(_url(labour, _at(10), _at(0)), HTTP_ACCEPT="application/pdf")
        assert_error(response, 400, "validation_error")

    @pytest.mark.parametrize(
        ("start", "end", "speed"),
        [
            (0, 0, 1),  # empty
            (600, 0, 1),  # backwards
            (0, 24 * 3600 + 1, 1),  # longer than 24 hours
            (0, 600, 2),  # no such paper speed
            (0, 600, "fast"),
        ],
    )
    def test_a_bad_window_or_speed_is_400(self, nurse_api, labour, start, end, speed):
        assert_error(
            nurse_api.get(_url(labour, _at(start), _at(end), speed)), 400, "validation_error"
        )

    def test_a_naive_date_is_400(self, nurse_api, labour):
        response = nurse_api.get(f"/api/patients/{labour.id}/ctg.pdf?from=2027-01-15T10:00:00")
        assert_error(response, 400, "validation_error")

    def test_another_place_gets_404_and_no_pdf(self, labour):
        outsider = bearer_client(
            UserFactory(role="doctor", places=[PlaceFactory()]),
        )
        assert_error(outsider.get(_url(labour, _at(0), _at(600))), 404, "not_found")
        assert_error(
            bearer_client(UserFactory(role="nurse")).get(_url(labour, _at(0), _at(60))), 404
        )

    def test_exactly_24_hours_is_allowed(self, nurse_api):
        patient = PatientFactory(
            ward=WardFactory(place=PlaceFactory()), monitoring_profile="obstetric"
        )
        nurse = UserFactory(role="nurse", places=[patient.place])
        response = bearer_client(nurse).get(_url(patient, _at(0), _at(24 * 3600)))
        assert response.status_code == 200
        assert (
            response.content.count(b"/Type /Page\n") + response.content.count(b"/Type /Page ") >= 1
        )


@needs_poppler
class TestPages:
    def test_grid_band_trace_gap_and_note_are_where_they_belong(self, nurse_api, labour, tmp_path):
        response = nurse_api.get(_url(labour, _at(0), _at(2400)))
        assert response.status_code == 200
        pages = _pages(response.content, tmp_path)
        g = PageGeometry(speed=1)
        assert len(pages) == 2  # 27 minutes a page at 1 cm/min
        page = Pixels(pages[0], g)
        start = T0

        # The grid: the bold 60 bpm line and the 0-toco line, across the page.
        for x in (g.left + 15, (g.left + g.right) / 2, g.right - 15):
            assert any(_near(rgb, GRID_MAJOR) for rgb in page.around(x, g.y_fhr(60)))
            assert any(_near(rgb, GRID_MAJOR) for rgb in page.around(x, g.y_ua(50)))
            # Between the lines, paper.
            assert page.at(x, g.y_fhr(65)) in ((255, 255, 255),) or x > g.right - 20
        # The 110-160 band is shaded, outside it the paper is white.
        x_band = g.x(start + 150, start) + 0.3 * 28.35  # between the minute lines
        assert page.at(x_band, g.y_fhr(185)) == (255, 255, 255)
        band = page.at(x_band, g.y_fhr(121))
        assert band != (255, 255, 255) and band[1] > band[0]

        def dark(column):
            return [rgb for rgb in column if _near(rgb, FHR_INK, 120)]

        # The trace: black near 140 bpm at minute 3, and nowhere far from it.
        column = page.column(g.x(start + 190, start), g.y_fhr(120), g.y_fhr(160))
        assert dark(column), "no FHR trace near 140 bpm"
        assert not dark(page.column(g.x(start + 190, start), g.y_fhr(175), g.y_fhr(205)))
        # The signal loss of minutes 12-13 is a gap in the line.
        gap_x = g.x(start + 750, start)
        assert not dark(page.column(gap_x, g.y_fhr(115), g.y_fhr(165)))
        # The prolonged deceleration at minute 25-29: the trace near 100 bpm at 26.5 min.
        dip = page.column(g.x(start + 1590, start), g.y_fhr(90), g.y_fhr(112))
        assert dark(dip)
        # Uterine activity is drawn in its panel.
        ua_cols = [
            page.column(g.x(start + s, start), g.y_ua(2), g.y_ua(98)) for s in range(60, 300, 10)
        ]
        assert any(dark(c) for c in ua_cols)

        # The note: a blue line through both panels at 6:00 and its number above the grid.
        note_x = g.x(start + 360, start)
        blue = [
            rgb
            for dx in (-1, 0, 1)
            for rgb in page.column(note_x + dx * 0.6, g.ua_bottom + 2, g.fhr_top - 2)
            if _near(rgb, NOTE_INK, 90)
        ]
        assert len(blue) > 50, len(blue)
        assert _near(page.at(note_x - 4, g.fhr_top + 2.5), NOTE_INK, 90)
        # ... and nowhere else on the page.
        elsewhere = page.column(g.x(start + 600, start), g.ua_bottom + 2, g.fhr_top - 2)
        assert not [rgb for rgb in elsewhere if _near(rgb, NOTE_INK, 90)]
        # The notes are written out below the toco panel.
        lane = [
            rgb
            for x in range(int(g.left + 30), int(g.left + 200), 2)
            for rgb in page.column(x, g.notes_top - 12, g.notes_top - 2)
        ]
        assert sum(1 for rgb in lane if sum(rgb) < 300) > 20

        # The classification of the second window (with the prolonged deceleration), as a bar
        # in the lane between the panels, from 30 minutes on: on page 2.
        page2 = Pixels(pages[1], g)
        start2 = start + g.page_seconds
        bar = page2.at(g.x(T0 + 1900, start2), g.ua_top + 2.1 * 2.835)
        assert any(_near(bar, ink, 40) for ink in CLASS_INK.values()), bar

    def test_three_cm_per_minute_is_nine_minutes_a_page(self, nurse_api, labour, tmp_path):
        response = nurse_api.get(_url(labour, _at(0), _at(1800), speed=3))
        pages = _pages(response.content, tmp_path)
        assert len(pages) == 4  # 30 min at 9 min a page
        g = PageGeometry(speed=3)
        page = Pixels(pages[0], g)
        # A bold line every minute (3 cm) at 3 cm/min.
        for minute in (1, 2, 3):
            x = g.x(T0 + 60 * minute, T0)
            assert any(_near(rgb, GRID_MAJOR, 80) for rgb in page.around(x, g.y_fhr(195)))
        # ... and no bold line half-way between.
        half = g.x(T0 + 90, T0)
        assert not any(_near(rgb, GRID_MAJOR, 80) for rgb in page.around(half, g.y_fhr(195)))


def test_a_12_hour_record_renders_every_page(tmp_path):
    """The renderer alone on 12 hours at 1 cm/min (27 pages); docs/performance.md times it
    with ``manage.py ctg_record_bench``."""
    hours = 12
    seconds = hours * 3600
    fhr: list[float | None] = [
        140.0 + (i % 20) / 4 if (i // 600) % 9 else None for i in range(seconds)
    ]
    ua: list[float | None] = [10.0 + 40 * ((i % 180) < 60) for i in range(seconds)]
    data = RecordData(
        patient_name="Test",
        mrn="M1",
        date_of_birth=None,
        place="P",
        ward="W",
        bed="1",
        monitor="m",
        start=T0,
        end=T0 + seconds,
        fhr=fhr,
        mhr=[None] * seconds,
        ua=ua,
    )
    pdf = ctg_record_render(data=data, speed=1)
    assert (
        pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type /Page/") >= 1
    )
    assert pdf.startswith(b"%PDF-")
    assert pdf.count(b"page 27 of 27") or b"/Count 27" in pdf
