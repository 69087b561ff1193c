"""The dashboard's client-side behaviour in the system Chromium, against a scripted backend
(mock_backend.py): speed with 40 beds at 4 Hz, alarm display, keyboard use, reconnect logic.
The same page against the real server is tested in test_dashboard_live.py.
"""

from __future__ import annotations

import json

import pytest

from frontend.tests.main_thread import main_thread_traced
from frontend.tests.mock_backend import MockBackend, make_patients

pytestmark = [pytest.mark.browser]

RED = "rgb(255, 59, 48)"
YELLOW = "rgb(255, 214, 10)"
CYAN = "rgb(34, 211, 238)"


def sign_in_and_open_ward(page, base_url: str, backend: MockBackend) -> None:
    page.goto(base_url + "/")
    page.fill("#email", "nurse@example.org")
    page.fill("#password", "secret-password")
    page.click("button[type=submit]")
    page.click("a.ward-link")
    page.wait_for_selector(f".tile[data-patient='{backend.patients[-1]['id']}']")


@pytest.fixture
def ward_page(page_server, new_page):
    page = new_page()
    backend = MockBackend(page, patients=make_patients(40))
    sign_in_and_open_ward(page, page_server, backend)
    return page, backend


def tile_value(page, patient_id: int, metric: str = "heart_rate") -> str:
    return page.inner_text(f".tile[data-patient='{patient_id}'] .vital-{metric} .value")


def test_forty_beds_at_four_hertz_stay_smooth(ward_page):
    page, backend = ward_page
    assert page.locator(".tile").count() == 40
    page.evaluate(
        """() => {
        window.__perf = {frames: 0, worst: 0, last: performance.now()};
        const tick = (t) => {
          window.__perf.worst = Math.max(window.__perf.worst, t - window.__perf.last);
          window.__perf.last = t; window.__perf.frames += 1; requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      }"""
    )
    start = page.evaluate("performance.now()")
    # 40 patients x 4 Hz (plus fetal heart rate for a third of them) for 5 seconds.
    with main_thread_traced(page) as main:
        for n in range(20):
            backend.push(backend.readings(lambda p, n=n: 60 + (p["id"] + n) % 60))
            page.wait_for_timeout(250)
    perf = page.evaluate("window.__perf")
    elapsed_s = (page.evaluate("performance.now()") - start) / 1000
    fps = perf["frames"] / elapsed_s
    # The last batch is on screen; a frame budget that holds on a busy 2-core CI machine.
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-patient='40'] .vital-heart_rate .value\").textContent === String(60 + (40 + 19) % 60)"
    )
    assert fps >= 20, perf
    # Long tasks by the page's own work (CPU time), which the machine's load does not lengthen.
    print(
        "TASKS",
        len(main.tasks),
        round(main.cpu_ms),
        sorted(c for _, c in main.tasks)[-5:],
        sorted(w for w, _ in main.tasks)[-5:],
    )
    assert len(main.long_tasks) <= 3, main.long_tasks


def test_a_pulse_rate_is_shown_as_pr_beside_the_ecg_heart_rate(ward_page):
    page, backend = ward_page
    assert page.is_hidden(".tile[data-patient='1'] .vital-pulse_rate")  # none seen yet
    frame = backend.readings(lambda p: 72)
    pulse = [
        {**item, "metric": "pulse_rate", "bpm": 75, "seq": item["seq"] + 10_000}
        for item in frame["items"]
    ]
    backend.push({"type": "readings", "items": frame["items"] + pulse})
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-patient='1'] .vital-pulse_rate .value\").textContent === '75'"
    )
    assert tile_value(page, 1, "heart_rate") == "72"
    assert page.inner_text(".tile[data-patient='1'] .vital-pulse_rate .vital-label") == "PR"


def test_values_device_state_and_trend_are_drawn(ward_page):
    page, backend = ward_page
    backend.push(backend.readings(lambda p: 111))
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-patient='1'] .vital-heart_rate .value\").textContent === '111'"
    )
    assert tile_value(page, 3, "fetal_heart_rate") == "140"
    assert page.is_hidden(".tile[data-patient='1'] .vital-fetal_heart_rate")
    assert "online" in page.inner_text(".tile[data-patient='1'] .device")
    # The trend canvas has ink on it.
    inked = page.evaluate(
        """() => { const c = document.querySelector(".tile[data-patient='1'] canvas");
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert inked > 50
    backend.push(
        {
            "type": "device.status",
            "device": {
                "id": 102,
                "patient": 2,
                "online": False,
                "last_seen_at": "2026-01-01T00:00:00Z",
            },
        }
    )
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-patient='2'] .device\").dataset.state === 'offline'"
    )
    assert "offline" in page.inner_text(".tile[data-patient='2'] .device")


def test_alarms_show_colour_priority_text_sound_and_can_be_acknowledged(ward_page):
    page, backend = ward_page
    backend.push(backend.alert(1, 3, "high"))
    backend.push(backend.alert(2, 5, "medium", kind="tachycardia"))
    backend.push(backend.alert(3, 7, "low", kind="signal_loss"))
    high = page.locator(".tile[data-patient='3']")
    page.wait_for_selector(".tile[data-patient='3'][data-alarm='high'][data-alarm-state='active']")
    assert high.locator(".alarm-prio").inner_text() == "HIGH"
    assert high.locator(".alarm-mark").inner_text() == "!!!"
    assert "Bradycardia" in high.locator(".alarm-msg").inner_text()
    assert high.evaluate("n => getComputedStyle(n).borderTopColor") == RED
    medium = page.locator(".tile[data-patient='5']")
    assert medium.get_attribute("data-alarm") == "medium"
    assert medium.evaluate("n => getComputedStyle(n).borderTopColor") == YELLOW
    assert medium.locator(".alarm-prio").inner_text() == "MEDIUM"
    low = page.locator(".tile[data-patient='7']")
    assert low.evaluate("n => getComputedStyle(n).borderTopColor") == CYAN
    assert low.locator(".alarm-prio").inner_text() == "LOW"
    # The ward's list: highest priority first, each with its priority in words.
    items = page.locator(".ward-alerts .alert-item")
    assert items.count() == 3
    assert [items.nth(i).get_attribute("data-priority") for i in range(3)] == [
        "high",
        "medium",
        "low",
    ]
    # Screen readers are told; the high alarm sounds.
    assert "HIGH priority alarm. Bed 3" in page.inner_text("#alarm-announcer")
    page.wait_for_function("Number(document.getElementById('mute').dataset.alarmCount) >= 1")

    high.locator(".btn-ack").click()
    page.wait_for_selector(".tile[data-patient='3'][data-alarm-state='acknowledged']")
    assert backend.acknowledged == [1]
    assert "ACK" in high.locator(".alarm-prio").inner_text()
    assert page.is_hidden(".tile[data-patient='3'] .btn-ack")

    backend.push({"type": "alert", "alert": {**backend.alerts[2], "state": "resolved"}})
    page.wait_for_selector(".tile[data-patient='5'][data-alarm='none']")
    assert page.locator(".ward-alerts .alert-item").count() == 2


def test_keyboard_reaches_tiles_and_acknowledge_buttons(ward_page):
    page, backend = ward_page
    backend.push(backend.alert(9, 2, "high"))
    page.wait_for_selector(".tile[data-patient='2'][data-alarm='high']")
    page.focus(".tile[data-patient='1']")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.patient") == "2"
    # Tab moves from the tile into it: the patient link, then the acknowledge button.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('btn-ack')")
    page.keyboard.press("Enter")
    page.wait_for_selector(".tile[data-patient='2'][data-alarm-state='acknowledged']")
    assert backend.acknowledged == [9]
    page.focus(".tile[data-patient='2']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/patient/2")


def test_reconnects_with_backoff_reauthenticates_and_resyncs(ward_page):
    page, backend = ward_page
    assert page.get_attribute("#conn", "data-state") == "open"
    first = backend.socket
    backend.patients = backend.patients[:39]  # bed 40 was discharged while we were away
    backend.patients[0] = {
        **backend.patients[0],
        "latest": {"heart_rate": {"bpm": 42, "recorded_at": "2100-01-01T00:00:00Z", "seq": 9}},
    }
    first.close(code=1011, reason="server restart")
    page.wait_for_selector("#conn[data-state='reconnecting']")
    assert "Connection lost" in page.inner_text("#conn")
    page.wait_for_selector("#conn[data-state='open']", timeout=10_000)
    assert len(backend.sockets) == 2
    frames = [f["type"] for f in backend.received]
    # auth, subscribe, (pings) ... auth again, subscribe again.
    assert frames.count("auth") == 2
    assert [f for f in backend.received if f["type"] == "subscribe"][-1] == {
        "type": "subscribe",
        "ward": 1,
    }
    page.wait_for_function("() => document.getElementById('main').dataset.snapshots === '2'")
    assert page.locator(".tile").count() == 39
    assert tile_value(page, 1) == "42"


def test_a_ward_the_server_refuses_shows_an_error(page_server, new_page):
    page = new_page()
    backend = MockBackend(page, patients=make_patients(2))
    page.goto(page_server + "/")
    page.fill("#email", "nurse@example.org")
    page.fill("#password", "x")
    page.click("button[type=submit]")
    page.wait_for_selector("a.ward-link")
    page.goto(page_server + "/#/ward/99")
    page.wait_for_selector(".page-error")
    assert "do not have access" in page.inner_text(".page-error")
    assert not page.is_hidden("#banner")
    assert backend.received == [] or all(f.get("ward") != 99 for f in backend.received)
    json.dumps(page.console_errors)


def test_access_token_is_refreshed_before_expiry_and_sent_in_band(page_server, new_page):
    page = new_page()
    backend = MockBackend(page, patients=make_patients(2))
    backend.access_lifetime = 6  # refreshed a quarter of its life before expiry
    sign_in_and_open_ward(page, page_server, backend)
    page.wait_for_timeout(5_500)
    assert backend.refreshes >= 1
    auth_frames = [f for f in backend.received if f["type"] == "auth"]
    assert len(backend.sockets) == 1  # no reconnect needed
    assert [f["token"] for f in auth_frames][:2] == backend.issued[:2]
    # The in-band re-authentication did not resubscribe (no duplicate snapshot).
    assert sum(1 for f in backend.received if f["type"] == "subscribe") == 1
    assert page.get_attribute("#conn", "data-state") == "open"


def test_connection_indicator_appears_only_with_a_live_view(page_server, new_page):
    page = new_page()
    MockBackend(page, patients=make_patients(1))
    page.goto(page_server + "/")
    page.fill("#email", "nurse@example.org")
    page.fill("#password", "x")
    page.click("button[type=submit]")
    page.wait_for_selector("a.ward-link")
    assert page.is_hidden("#conn")
    page.click("a.ward-link")
    page.wait_for_selector("#conn[data-state='open']")
    assert page.is_visible("#conn")
    page.click("#signout")
    page.wait_for_selector("#email")
    assert page.is_hidden("#conn")
    assert page.is_hidden("#signout")


def test_a_bed_admitted_after_the_snapshot_appears(ward_page):
    page, backend = ward_page
    admitted = make_patients(41)[-1]
    backend.patients = [*backend.patients, admitted]
    backend.push(
        {
            "type": "readings",
            "items": [
                {
                    "patient": 41,
                    "device": 141,
                    "metric": "heart_rate",
                    "bpm": 88,
                    "recorded_at": "2100-01-01T00:00:00Z",
                    "seq": 5,
                }
            ],
        }
    )
    page.wait_for_selector(".tile[data-patient='41']")
    assert page.locator(".tile").count() == 41
    assert sum(1 for f in backend.received if f["type"] == "subscribe") == 2


def test_patient_view_sounds_and_announces_its_new_high_alarm(ward_page):
    page, backend = ward_page
    page.click(".tile[data-patient='4'] .name")
    page.wait_for_selector("#patient-name")
    page.wait_for_function(
        "() => document.querySelector('.vital-heart_rate .value').textContent !== '--'"
    )
    before = int(page.get_attribute("#mute", "data-alarm-count"))
    backend.push(backend.alert(21, 4, "high"))
    page.wait_for_selector(".alert-item[data-alert='21'][data-state='active']")
    page.wait_for_function(
        f"() => Number(document.getElementById('mute').dataset.alarmCount) > {before}"
    )
    assert "HIGH priority alarm" in page.inner_text("#alarm-announcer")
    page.click(".alert-item[data-alert='21'] .btn-ack")
    page.wait_for_selector(".alert-item[data-alert='21'][data-state='acknowledged']")
    assert backend.acknowledged == [21]
    assert (
        page.locator(".limits tr[data-metric='heart_rate'] td[data-band='brady_high']").inner_text()
        == "49"
    )
