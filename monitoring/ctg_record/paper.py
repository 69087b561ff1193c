"""The CTG record's paper: the page's geometry (where a page draws what) and its inks."""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import cm, mm

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
