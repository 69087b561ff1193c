"""The dashboard end to end: the system Chromium against a real Daphne (DEBUG off, collected
static files), the test run's Redis and a real database, with readings posted by devices over
REST and alarms raised by the server's own rules.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from frontend.tests.live_stack import DeviceStream, LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.live]

RED = "rgb(255, 59, 48)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, browser):
    # `browser` first: without Chromium the module skips before starting any server.
    live = LiveStack(tmp_path_factory.mktemp("live"))
    try:
        live.seed = live.prepare()
        live.start()
        yield live
    finally:
        live.close()


def iso(dt: datetime) -> str:
    return dt.isoformat()


def readings_for(
    patient: dict,
    bpm: int,
    *,
    at: datetime | None = None,
    count: int = 1,
    step_s: float = 1.0,
    fhr: int | None = None,
) -> list[dict]:
    """`count` readings ending at `at`, one every `step_s` seconds, with fresh seqs."""
    at = at or datetime.now(UTC)
    items = []
    for k in range(count):
        t = at - timedelta(seconds=step_s * (count - 1 - k))
        items.append(
            {"metric": "heart_rate", "bpm": bpm, "recorded_at": iso(t), "seq": patient["next_seq"]}
        )
        patient["next_seq"] += 1
        if patient["profile"] == "obstetric":
            items.append(
                {
                    "metric": "fetal_heart_rate",
                    "bpm": fhr or patient["base_fhr"],
                    "recorded_at": iso(t),
                    "seq": patient["next_seq"],
                }
            )
            patient["next_seq"] += 1
    return items


def post(stack: LiveStack, patient: dict, bpm: int, **kwargs) -> None:
    status, body = stack.post_readings(patient["token"], readings_for(patient, bpm, **kwargs))
    assert status in (200, 201), body


def evaluated(stack: LiveStack, timeout: float = 60) -> None:
    """Wait until the stack's alarm evaluator has evaluated every stored reading."""
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(stack.manage("alarms_lag", "--json"))
        if sum(row["lag"] + row["pending"] for row in rows) == 0:
            return
        assert time.monotonic() < deadline, f"readings still not evaluated: {rows}"


def sign_in(page, stack: LiveStack, email: str) -> None:
    page.goto(stack.url + "/")
    page.fill("#email", email)
    page.fill("#password", stack.seed["password"])
    page.click("button[type=submit]")
    page.wait_for_selector("a.ward-link")


def open_ward(page, stack: LiveStack) -> None:
    page.click(f"a.ward-link[data-ward='{stack.seed['ward']}']")
    page.wait_for_selector(f".tile[data-patient='{stack.seed['patients'][-1]['id']}']")
    page.wait_for_selector("#conn[data-state='open']")


def tile(stack: LiveStack, index: int) -> str:
    return f".tile[data-patient='{stack.seed['patients'][index]['id']}']"


def test_static_files_are_served_with_debug_off(stack):
    import urllib.request

    with urllib.request.urlopen(stack.url + "/static/frontend/js/main.js") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
    with urllib.request.urlopen(stack.url + "/static/frontend/css/app.css") as response:
        assert response.headers["Content-Type"].startswith("text/css")


def test_sign_in_open_a_ward_and_see_posted_readings_live(stack, new_page, artifacts_dir):
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    # Only the wards of the nurse's own places are offered.
    wards = page.locator("a.ward-link")
    assert wards.count() == 1
    assert wards.inner_text() == "Labour Ward A"
    open_ward(page, stack)
    assert page.locator(".tile").count() == len(stack.seed["patients"])
    first = stack.seed["patients"][0]
    assert page.inner_text(tile(stack, 0) + " .name") == first["name"]

    # Ten minutes of history fill the trend (aggregated REST history), then live readings.
    page.wait_for_function(
        """(sel) => { const c = document.querySelector(sel + ' canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 1; i < d.length; i += 4) if (d[i] > 150 && d[i - 1] < 150) n++; return n > 200; }""",
        arg=tile(stack, 0),
    )
    post(stack, first, 123)
    page.wait_for_function(
        "(sel) => document.querySelector(sel + ' .vital-heart_rate .value').textContent === '123'",
        arg=tile(stack, 0),
    )
    if first["profile"] == "obstetric":
        assert page.inner_text(tile(stack, 0) + " .vital-fetal_heart_rate .value") == str(
            first["base_fhr"]
        )
    assert "online" in page.inner_text(tile(stack, 0) + " .device")

    # A few seconds of live data on every bed, then the picture for the docs.
    for second in range(4):
        for i, patient in enumerate(stack.seed["patients"]):
            post(stack, patient, patient["base_hr"] + (second + i) % 5)
        page.wait_for_timeout(700)
    page.wait_for_timeout(800)
    assert page.console_errors == []


def test_an_unauthorised_ward_or_patient_cannot_be_opened(stack, new_page):
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    page.goto(f"{stack.url}/#/ward/{stack.seed['other_ward']}")
    page.wait_for_selector(".page-error")
    assert "do not have access" in page.inner_text(".page-error")
    assert page.locator(".tile").count() == 0
    page.goto(f"{stack.url}/#/patient/{stack.seed['outsider_patient']}")
    page.wait_for_selector(".page-error")
    assert "do not have access" in page.inner_text(".page-error")


def test_bradycardia_raises_a_red_alarm_acknowledged_on_another_screen(
    stack, new_page, artifacts_dir
):
    nurse = new_page()
    doctor = new_page()
    sign_in(nurse, stack, stack.seed["nurse"])
    open_ward(nurse, stack)
    sign_in(doctor, stack, stack.seed["doctor"])
    open_ward(doctor, stack)
    patient = stack.seed["patients"][1]
    sel = tile(stack, 1)
    # A bradycardia episode: 30 s at 35 bpm (longer than any hold time), streamed in batches.
    start = datetime.now(UTC) - timedelta(seconds=30)
    for k in range(0, 31, 5):
        post(stack, patient, 35, at=start + timedelta(seconds=k + 4), count=5)
    # And a tachycardia on an adult bed: a medium (yellow) alarm beside it.
    adult = next(p for p in stack.seed["patients"][3:] if p["profile"] == "adult")
    for k in range(0, 31, 5):
        post(stack, adult, 118, at=start + timedelta(seconds=k + 4), count=5)
    for page in (nurse, doctor):
        page.wait_for_selector(
            f"{sel}[data-alarm='high'][data-alarm-state='active']", timeout=20_000
        )
    band = nurse.locator(sel + " .alarm-prio")
    assert band.inner_text() == "HIGH"
    assert nurse.locator(sel).evaluate("n => getComputedStyle(n).borderTopColor") == RED
    assert "radycardia" in nurse.inner_text(sel + " .alarm-msg")
    assert nurse.inner_text(sel + " .vital-heart_rate .value") == "35"
    assert "HIGH priority alarm" in nurse.inner_text("#alarm-announcer")
    item = nurse.locator(".ward-alerts .alert-item[data-priority='high']")
    assert item.count() >= 1
    nurse.wait_for_function("() => Number(document.getElementById('mute').dataset.alarmCount) >= 1")
    adult_sel = f".tile[data-patient='{adult['id']}']"
    nurse.wait_for_selector(f"{adult_sel}[data-alarm='medium']", timeout=20_000)
    assert nurse.inner_text(adult_sel + " .alarm-prio") == "MEDIUM"
    # The other monitors stream over the device WebSocket (so they show as online).
    others = [p for p in stack.seed["patients"] if p is not patient and p is not adult]
    stream = DeviceStream(stack, others)
    try:
        for second in range(3):
            stream.send(
                lambda p, second=second: readings_for(
                    p, p["base_hr"] + second, fhr=p["base_fhr"] - second
                )
            )
            nurse.wait_for_timeout(300)
        other = f".tile[data-patient='{others[0]['id']}']"
        nurse.wait_for_selector(f"{other} .device[data-state='online']")
        nurse.wait_for_timeout(500)
        # The central station with a high and a medium alarm: the picture for the docs.
        nurse.screenshot(path=str(artifacts_dir / "ward-view.png"), animations="disabled")
    finally:
        stream.close()
    # A monitor that disconnects is shown offline (the server's device.status frame).
    nurse.wait_for_selector(f"{other} .device[data-state='offline']", timeout=10_000)
    assert "offline" in nurse.inner_text(other + " .device")

    nurse.click(sel + " .btn-ack")
    nurse.wait_for_selector(f"{sel}[data-alarm-state='acknowledged']")
    # The other screen hears about it over its own WebSocket.
    doctor.wait_for_selector(f"{sel}[data-alarm-state='acknowledged']", timeout=10_000)
    assert "ACK" in doctor.inner_text(sel + " .alarm-prio")
    assert doctor.is_hidden(sel + " .btn-ack")


def test_reconnects_and_resynchronises_after_a_server_restart(stack, new_page):
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    open_ward(page, stack)
    snapshots = int(page.get_attribute("#main", "data-snapshots"))
    stack.stop()
    page.wait_for_selector("#conn[data-state='reconnecting']", timeout=10_000)
    assert "Connection lost" in page.inner_text("#conn")
    assert page.locator(".ward-layout.not-live").count() == 1
    stack.start()
    # A reading stored while the page is still away: it must come back through the snapshot.
    patient = stack.seed["patients"][2]
    post(stack, patient, 58)
    page.wait_for_selector("#conn[data-state='open']", timeout=30_000)
    page.wait_for_function(
        f"() => Number(document.getElementById('main').dataset.snapshots) > {snapshots}"
    )
    page.wait_for_function(
        "(sel) => document.querySelector(sel + ' .vital-heart_rate .value').textContent === '58'",
        arg=tile(stack, 2),
    )
    assert page.locator(".ward-layout.not-live").count() == 0
    # And live updates flow again on the new connection.
    post(stack, patient, 61)
    page.wait_for_function(
        "(sel) => document.querySelector(sel + ' .vital-heart_rate .value').textContent === '61'",
        arg=tile(stack, 2),
    )


def test_patient_view_shows_limits_alerts_and_history(stack, new_page, artifacts_dir):
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    patient = stack.seed["patients"][0]
    page.goto(f"{stack.url}/#/patient/{patient['id']}")
    page.wait_for_selector("#patient-name")
    assert page.inner_text("#patient-name") == patient["name"]
    page.wait_for_function(
        "() => Number(document.getElementById('main').dataset.historyPoints) > 10"
    )
    page.wait_for_selector(".limits tbody tr")
    assert "Heart rate" in page.inner_text(".limits")
    page.click("button[data-range='12h']")
    assert page.get_attribute("button[data-range='12h']", "aria-pressed") == "true"
    page.wait_for_function(
        "() => document.querySelector('.chart-note').textContent.includes('120 s buckets')"
    )
    page.click("button[data-range='1h']")
    page.wait_for_function(
        "() => document.querySelector('.chart-note').textContent.includes('10 s buckets')"
    )
    page.screenshot(path=str(artifacts_dir / "patient-view.png"))
    # A custom range: the last few minutes (5 s buckets, the finest offered).
    page.evaluate(
        """() => { const pad = (n) => String(n).padStart(2, '0');
        const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
        const end = new Date(Date.now() + 60000);
        document.getElementById('range-from').value = local(new Date(end - 6 * 60000));
        document.getElementById('range-to').value = local(end); }"""
    )
    page.click("button[data-range='custom']")
    page.wait_for_function(
        "() => document.querySelector('.chart-note').textContent.includes(' 5 s buckets')"
    )
    assert int(page.get_attribute("#main", "data-history-points")) > 10

    # Alarm limits: edit, refused when the bands cross, back to the profile's defaults.
    hr_low = ".limits tr[data-metric='heart_rate'] td[data-band='brady_high']"
    default_low = page.inner_text(hr_low)
    page.click("#limits-edit")
    page.fill("input[data-metric='heart_rate'][data-band='brady_high']", "45")
    page.click("#limits-save")
    page.wait_for_function("(sel) => document.querySelector(sel)?.textContent === '45'", arg=hr_low)
    assert "(patient)" in page.inner_text(".limits tr[data-metric='heart_rate'] th")
    page.click("#limits-edit")
    page.fill("input[data-metric='heart_rate'][data-band='brady_high']", "140")
    page.click("#limits-save")
    page.wait_for_function(
        "() => document.getElementById('limits-error').textContent.includes('Must be above')"
    )
    assert page.input_value("input[data-metric='heart_rate'][data-band='brady_high']") == "140"
    page.click("#limits-reset")
    page.wait_for_function(
        "([sel, v]) => document.querySelector(sel)?.textContent === v", arg=[hr_low, default_low]
    )
    assert "(default)" in page.inner_text(".limits tr[data-metric='heart_rate'] th")
    # Only the refused save is logged (by the browser itself).
    assert [e for e in page.console_errors if "status of 400" not in e] == []


def test_sign_out_ends_the_session(stack, new_page):
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    refresh = page.evaluate("JSON.parse(sessionStorage.getItem('pm.session')).refresh")
    page.click("#signout")
    page.wait_for_selector("#email")
    assert page.evaluate("sessionStorage.getItem('pm.session')") is None
    status, body = stack.request("POST", "/api/auth/refresh/", {"refresh": refresh})
    assert status == 401, body


def test_wrong_password_is_refused_with_a_message(stack, new_page):
    page = new_page()
    page.goto(stack.url + "/")
    page.fill("#email", stack.seed["nurse"])
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('signin-error').textContent.length > 0")
    assert page.locator("a.ward-link").count() == 0


def test_a_pause_at_one_station_shows_on_every_station_of_the_ward(stack, new_page):
    """Audio paused is the ward's, kept by the server: a nurse pauses, the doctor's screen on
    the same ward shows the countdown and who paused it, and the doctor's resume ends it on
    both."""
    nurse, doctor = new_page(), new_page()
    sign_in(nurse, stack, stack.seed["nurse"])
    open_ward(nurse, stack)
    sign_in(doctor, stack, stack.seed["doctor"])
    open_ward(doctor, stack)
    nurse.click("#mute")
    try:
        nurse.wait_for_selector("#mute[data-audio='paused']")
        doctor.wait_for_selector("#mute[data-audio='paused']")
        text = doctor.inner_text("#mute")
        assert text.startswith(("Audio paused 2:00", "Audio paused 1:5")), text
        assert doctor.is_hidden("#audio-off")  # audio off is for admins only
        doctor.click("#mute")
        doctor.wait_for_selector("#mute[data-audio='sounding']")
        nurse.wait_for_selector("#mute[data-audio='sounding']")
    finally:
        # The stack is shared by the module: leave the ward sounding for the other tests.
        if nurse.get_attribute("#mute", "data-audio") != "sounding":
            nurse.click("#mute")
            nurse.wait_for_selector("#mute[data-audio='sounding']")
    assert nurse.console_errors == [] and doctor.console_errors == []


def test_the_ctg_classification_reaches_the_tile_live_and_survives_a_restart(stack, new_page):
    """The live evaluator classifies an obstetric bed's CTG from posted readings; the tile shows
    it without a reload, follows the next classification, and shows the same after the web
    server restarts (the snapshot reads it from the database)."""
    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    open_ward(page, stack)
    patient = next(p for p in stack.seed["patients"] if p["profile"] == "obstetric")
    badge = f".tile[data-patient='{patient['id']}'] .ctg-badge"
    assert page.is_visible(badge)

    def title() -> str:
        return page.get_attribute(badge, "title") or ""

    now = datetime.now(UTC)
    post(stack, patient, 80, at=now - timedelta(seconds=90), count=60)
    page.wait_for_function(
        "(sel) => document.querySelector(sel).dataset.ctg !== 'none'", arg=badge, timeout=20_000
    )
    first = title()
    assert first.startswith("CTG ") and "(FIGO 2015)" in first
    assert page.get_attribute(badge, "data-ctg") in {
        "normal",
        "suspicious",
        "pathological",
        "insufficient_signal",
    }
    # A minute more of signal, 90 s of readings' time later: the next evaluation's content
    # differs (at least the share of signal missing from the window), and the tile follows it.
    post(stack, patient, 80, at=now, count=60)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).title !== old",
        arg=[badge, first],
        timeout=20_000,
    )
    # The readings of a post may reach the evaluator in more than one read (each a due
    # evaluation of its own): the tile's state to compare is the one after the evaluator has
    # evaluated everything (its last classification is published before the stream is
    # acknowledged).
    evaluated(stack)
    shown = (page.get_attribute(badge, "data-ctg"), title())
    snapshots = int(page.get_attribute("#main", "data-snapshots"))
    stack.restart()
    page.wait_for_function(
        f"() => Number(document.getElementById('main').dataset.snapshots) > {snapshots}",
        timeout=30_000,
    )
    fresh = new_page()
    sign_in(fresh, stack, stack.seed["nurse"])
    open_ward(fresh, stack)
    for view in (page, fresh):
        assert (view.get_attribute(badge, "data-ctg"), view.get_attribute(badge, "title")) == shown
    assert fresh.console_errors == []  # (the first page logged its refused reconnects)


def test_a_note_added_on_one_dashboard_appears_on_another(stack, new_page, tmp_path):
    """A midwife clicks a time on the CTG strip and writes a note; the doctor's open view of
    the same patient shows it on the strip and in the notes list (the `note` frame), and the
    CTG record downloaded from the page carries it."""
    patient = next(p for p in stack.seed["patients"] if p["profile"] == "obstetric")
    nurse, doctor = new_page(), new_page()
    for page, who in ((nurse, "nurse"), (doctor, "doctor")):
        sign_in(page, stack, stack.seed[who])
        page.goto(f"{stack.url}/#/patient/{patient['id']}")
        page.wait_for_function(
            "() => Number(document.getElementById('ctg-strip')?.dataset.points) > 0"
        )
        page.wait_for_selector("#conn[data-state='open']")
    assert doctor.locator("#ctg-strip").get_attribute("data-notes") == "0"

    # A click at 70 % of the strip's width opens a note at that moment of the trace.
    strip = nurse.locator("#ctg-strip")
    box = strip.bounding_box()
    assert box is not None
    strip.click(position={"x": box["width"] * 0.7, "y": box["height"] * 0.3})
    nurse.wait_for_selector("#note-form:not([hidden])")
    nurse.fill("#note-text", "Vaginal examination 6 cm")
    nurse.click("#note-save")
    nurse.wait_for_selector("#note-form", state="hidden")

    doctor.wait_for_function("() => document.getElementById('ctg-strip').dataset.notes === '1'")
    doctor.wait_for_selector(".note-item .note-text")
    assert doctor.inner_text(".note-item .note-text") == "Vaginal examination 6 cm"
    assert "Asha Rao" in doctor.inner_text(".note-item .note-who")
    # Only the author may correct it; anyone annotates.
    assert doctor.locator(".note-item .note-edit").count() == 0
    assert nurse.locator(".note-item .note-edit").count() == 1
    doctor.click(".note-item .note-annotate")
    doctor.fill(".note-inline .note-input", "Agreed, reassess in 2 hours")
    doctor.click(".note-inline button[type=submit]")
    nurse.wait_for_selector(".note-addenda li")
    assert "Agreed, reassess in 2 hours" in nurse.inner_text(".note-addenda")

    # The CTG record of the strip's window, from the strip's PDF button.
    with doctor.expect_download() as download:
        doctor.click("#ctg-pdf")
    pdf = tmp_path / "record.pdf"
    download.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert doctor.console_errors == [] and nurse.console_errors == []


NEW_MOTHERS = """
import json
import math
from clinical.models import Patient, Ward
from testing.factories import DeviceFactory, PatientFactory
ward = Ward.objects.get(id={ward})
rows = []
for bed in ("21", "22"):
    patient = PatientFactory(
        ward=ward, bed=bed, mrn="CTG-" + bed, monitoring_profile="obstetric"
    )
    device = DeviceFactory(patient=patient, place=ward.place)
    rows.append({{"id": patient.id, "token": device.token}})
print(json.dumps(rows))
"""


def ctg_trace(minutes: float, *, end: datetime) -> list[dict]:
    """A normal CTG at 1 Hz ending at ``end``: fetal heart rate 140 with variability, uterine
    activity with a contraction every 3 minutes."""
    items = []
    seconds = int(minutes * 60)
    for k in range(seconds):
        t = end - timedelta(seconds=seconds - 1 - k)
        fhr = 140 + 5 * math.sin(2 * math.pi * k / 20) + 2 * math.sin(2 * math.pi * k / 7)
        phase = k % 180
        ua = 10 + (60 * math.sin(math.pi * phase / 60) ** 2 if phase < 60 else 0)
        for n, (metric, value) in enumerate((("fetal_heart_rate", fhr), ("uterine_activity", ua))):
            items.append(
                {"metric": metric, "bpm": round(value), "recorded_at": iso(t), "seq": 2 * k + n + 1}
            )
    return items


def test_the_strip_header_and_the_tile_agree(stack, new_page):
    """Two beds on a running server, one monitored for 6 minutes and one for 15: the ward tile
    (the alarm evaluator's classification) and the strip's header on the patient page (the CTG
    endpoint, asked for the evaluator's window ending at the strip's right edge) say the same:
    "too short to classify yet" for the first, normal with the same baseline for the second."""
    out = stack.manage("shell", "--no-imports", "-c", NEW_MOTHERS.format(ward=stack.seed["ward"]))
    short, long = json.loads(out.strip().splitlines()[-1])
    now = datetime.now(UTC)
    for bed, minutes in ((short, 6), (long, 15)):
        items = ctg_trace(minutes, end=now)
        for first in range(0, len(items), 1000):
            status, body = stack.post_readings(bed["token"], items[first : first + 1000])
            assert status in (200, 201), body
    evaluated(stack)

    page = new_page()
    sign_in(page, stack, stack.seed["nurse"])
    open_ward(page, stack)
    shown = {}
    for bed in (short, long):
        badge = f".tile[data-patient='{bed['id']}'] .ctg-badge"
        page.wait_for_function(
            "(sel) => document.querySelector(sel)?.dataset.ctg !== 'none'", arg=badge
        )
        shown[bed["id"]] = (
            page.get_attribute(badge, "data-ctg"),
            page.inner_text(badge + " .ctg-baseline"),
            page.get_attribute(badge, "title") or "",
        )
    assert shown[short["id"]][0] == "insufficient_signal"
    assert "too short to classify yet" in shown[short["id"]][2]
    assert shown[long["id"]][:2] == ("normal", "BL 140")

    for bed in (short, long):
        classification, baseline, _ = shown[bed["id"]]
        page.goto(f"{stack.url}/#/patient/{bed['id']}")
        page.wait_for_selector("#ctg-summary[data-classification]")
        header = page.locator("#ctg-summary")
        assert header.get_attribute("data-classification") == classification
        assert baseline == (f"BL {header.get_attribute('data-baseline')}" if baseline else "")
        text = header.inner_text()
        assert " · 30 min to " in text or " of 30 min to " in text
        if classification == "insufficient_signal":
            assert "too short to classify yet" in text
    assert page.console_errors == []
