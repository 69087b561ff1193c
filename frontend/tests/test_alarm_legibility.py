"""Alarms a midwife can read: the band's text keeps at least 4.5:1 contrast (WCAG 2.x) in every
phase of its flash, measured from computed styles with the animation stepped through by the
Web Animations clock (no waiting on the wall clock); a tile shows its alarm's whole short name;
the ward's alarm list shows at least six alarms at 1440 x 900. Against the scripted backend."""

from __future__ import annotations

import pytest

from frontend.tests.mock_backend import MockBackend, make_patients
from frontend.tests.test_dashboard_client import sign_in_and_open_ward

pytestmark = [pytest.mark.browser]

DESKTOP = {"width": 1440, "height": 900}
MIN_CONTRAST = 4.5
PHASES = 20  # samples per flash period

# WCAG 2.x relative luminance and contrast of the text's colour on the background it is drawn
# on (semi-transparent backgrounds composited up the tree), sampled at PHASES points of each
# running animation's period.
CONTRAST_JS = """
([selector, textSelector, phases]) => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let out = { r: 0, g: 0, b: 0 };
    for (const c of layers.reverse()) {
      out = { r: c.r * c.a + out.r * (1 - c.a), g: c.g * c.a + out.g * (1 - c.a), b: c.b * c.a + out.b * (1 - c.a) };
    }
    return out;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    const animations = root.getAnimations({ subtree: true });
    const period = animations.length ? animations[0].effect.getComputedTiming().duration : 0;
    const samples = animations.length ? phases : 1;
    for (let k = 0; k < samples; k++) {
      for (const a of animations) { a.pause(); a.currentTime = (period * k) / samples; }
      for (const text of root.querySelectorAll(textSelector)) {
        if (!text.textContent.trim() || !text.getClientRects().length) continue;
        const fg = parse(getComputedStyle(text).color);
        const bg = background(text);
        out.push({ where: `${root.dataset.patient || root.dataset.alert || ""} ${text.className}`, phase: k,
                   bg: `${Math.round(bg.r)},${Math.round(bg.g)},${Math.round(bg.b)}`, ratio: ratio(fg, bg),
                   animated: animations.length > 0 });
      }
    }
    for (const a of animations) a.play();
  }
  return out;
}
"""


@pytest.fixture
def alarmed_ward(page_server, new_page):
    page = new_page(viewport=DESKTOP)
    backend = MockBackend(page, patients=make_patients(12))
    sign_in_and_open_ward(page, page_server, backend)
    kinds = [
        (1, "high", "active", "fetal_bradycardia"),
        (2, "medium", "active", "ctg_pathological"),
        (3, "low", "active", "fhr_signal_loss"),
        (4, "high", "acknowledged", "bradycardia"),
        (5, "medium", "acknowledged", "fhr_maternal_coincidence"),
        (6, "low", "acknowledged", "device_offline"),
        (7, "medium", "active", "prolonged_deceleration"),
        (8, "high", "active", "fetal_tachycardia"),
    ]
    for alert_id, (patient, priority, state, kind) in enumerate(kinds, start=1):
        frame = backend.alert(alert_id, patient, priority, state=state, kind=kind)
        frame["alert"]["message"] = (
            f"{kind.replace('_', ' ').capitalize()}: 3 minutes below the limit of the "
            "patient's profile, since the last contraction (FIGO 2015)"
        )
        backend.push(frame)
    page.wait_for_selector(".tile[data-patient='8'][data-alarm='high']")
    page.wait_for_function(
        "() => document.querySelectorAll('.ward-alerts .alert-item').length === 8"
    )
    return page, backend


def test_alarm_text_is_legible_in_every_phase_of_every_flash(alarmed_ward):
    page, _backend = alarmed_ward
    samples = page.evaluate(
        CONTRAST_JS, [".tile[data-alarm]", ".alarm-mark, .alarm-prio, .alarm-msg", PHASES]
    )
    flashing = [s for s in samples if s["animated"]]
    # The active high and medium bands flash (three tiles), each sampled over its period.
    assert len({s["where"].split()[0] for s in flashing}) == 4, samples
    worst = min(samples, key=lambda s: s["ratio"])
    assert worst["ratio"] >= MIN_CONTRAST, worst
    # They do flash: each active band shows two fills over its period.
    for tile in ("1", "2", "8"):
        fills = {s["bg"] for s in flashing if s["where"].startswith(tile + " ")}
        assert len(fills) == 2, (tile, fills)


def test_the_alarm_list_is_legible_too(alarmed_ward):
    page, _backend = alarmed_ward
    samples = page.evaluate(
        CONTRAST_JS,
        [
            ".ward-alerts .alert-item",
            ".alert-prio, .alert-state, .alert-who, .alert-kind, .alert-msg, .alert-time",
            1,
        ],
    )
    assert len(samples) >= 8 * 5
    worst = min(samples, key=lambda s: s["ratio"])
    assert worst["ratio"] >= MIN_CONTRAST, worst


def test_a_tile_shows_the_whole_short_name_of_its_alarm(alarmed_ward):
    page, _backend = alarmed_ward
    names = {
        "1": "Fetal bradycardia",
        "2": "CTG pathological",
        "3": "FHR signal loss",
        "5": "FHR = maternal HR",
        "7": "Prolonged decel.",
        "8": "Fetal tachycardia",
    }
    for patient, name in names.items():
        msg = page.locator(f".tile[data-patient='{patient}'] .alarm-msg")
        assert msg.inner_text() == name
        # Nothing of it is cut: the text fits its box, and the box lies inside the tile.
        fits = msg.evaluate(
            """n => {
              const box = n.getBoundingClientRect(), tile = n.closest('.tile').getBoundingClientRect();
              return n.scrollWidth <= n.clientWidth + 1 && box.left >= tile.left && box.right <= tile.right;
            }"""
        )
        assert fits, (patient, name)
    # The full message stays one hover away.
    assert "3 minutes below" in page.get_attribute(".tile[data-patient='1'] .alarm-msg", "title")


def test_at_least_six_alarms_are_readable_in_the_list_at_1440_by_900(alarmed_ward):
    page, _backend = alarmed_ward
    visible = page.evaluate(
        """() => {
          const list = document.querySelector('.ward-alerts').getBoundingClientRect();
          const bottom = Math.min(list.bottom, window.innerHeight);
          return [...document.querySelectorAll('.ward-alerts .alert-item')]
            .filter(i => i.getBoundingClientRect().bottom <= bottom)
            .map(i => ({ h: i.getBoundingClientRect().height,
                         msgLines: Math.round(i.querySelector('.alert-msg').getBoundingClientRect().height
                                   / parseFloat(getComputedStyle(i.querySelector('.alert-msg')).lineHeight)) }));
        }"""
    )
    assert len(visible) >= 6, visible
    # Each message reads in a few lines, not a column of single words.
    assert max(v["msgLines"] for v in visible) <= 3, visible
