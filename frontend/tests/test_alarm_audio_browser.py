"""Alarm audio paused (IEC 60601-1-8) on the ward view, in the system Chromium against the
scripted backend, on Playwright's controlled clock: a countdown, sound again when it ends or
when a new high alarm arrives, the pause the server reports, "audio off" for admins only and
shown for as long as it lasts."""

from __future__ import annotations

import pytest

from frontend.tests.mock_backend import MockBackend, make_patients
from frontend.tests.test_dashboard_client import sign_in_and_open_ward

pytestmark = [pytest.mark.browser]


def open_ward(page_server, new_page, role: str = "nurse"):
    page = new_page()
    page.clock.install()
    backend = MockBackend(page, patients=make_patients(8))
    backend.role = role
    sign_in_and_open_ward(page, page_server, backend)
    page.wait_for_selector("#mute:not([hidden])")
    return page, backend


def advance(page, seconds: int) -> None:
    """Run the page's clock in 5 s steps, letting real replies (pongs) arrive in between, so
    the connection is not taken for dead."""
    for _ in range(seconds // 5):
        page.clock.run_for(5000)
        page.wait_for_timeout(30)
    page.clock.run_for((seconds % 5) * 1000)


def bursts(page) -> int:
    return int(page.get_attribute("#mute", "data-alarm-count") or 0)


def wait_bursts_above(page, count: int) -> None:
    page.wait_for_function(
        f"() => Number(document.getElementById('mute').dataset.alarmCount) > {count}"
    )


def test_pause_counts_down_and_the_alarm_sounds_again_when_it_ends(page_server, new_page):
    page, backend = open_ward(page_server, new_page)
    mute = page.locator("#mute")
    assert mute.inner_text() == "Pause alarm audio (2:00)"
    assert page.is_hidden("#audio-off")  # a nurse can pause, not switch off
    backend.push(backend.alert(1, 3, "high"))
    wait_bursts_above(page, 0)

    mute.click()
    page.wait_for_selector("#mute[data-audio='paused']")
    assert ("pause/", {}) in backend.audio_calls  # recorded by the server, with who
    assert mute.inner_text() == "Audio paused 2:00 · Asha Rao · resume"
    assert mute.get_attribute("aria-pressed") == "true"
    silent_from = bursts(page)
    advance(page, 90)  # the high alarm's bursts (every 8 s) stay silent
    assert mute.inner_text().startswith("Audio paused 0:30")
    assert bursts(page) == silent_from

    advance(page, 31)
    page.wait_for_selector("#mute[data-audio='sounding']")
    assert mute.inner_text() == "Pause alarm audio (2:00)"
    assert bursts(page) > silent_from  # sounds again at once


def test_a_new_high_alarm_ends_the_pause(page_server, new_page):
    page, backend = open_ward(page_server, new_page)
    backend.push(backend.alert(1, 3, "medium", kind="tachycardia"))
    page.click("#mute")
    page.wait_for_selector("#mute[data-audio='paused']")
    before = bursts(page)
    backend.push(backend.alert(2, 5, "high"))
    page.wait_for_selector("#mute[data-audio='sounding']")
    wait_bursts_above(page, before)


def test_resume_ends_the_pause_early(page_server, new_page):
    page, backend = open_ward(page_server, new_page)
    page.click("#mute")
    page.wait_for_selector("#mute[data-audio='paused']")
    page.click("#mute")
    page.wait_for_selector("#mute[data-audio='sounding']")
    assert [call for call, _ in backend.audio_calls if call != "get"] == ["pause/", "resume/"]


def test_a_pause_made_at_another_station_is_shown(page_server, new_page):
    page, backend = open_ward(page_server, new_page)
    backend.push(
        {
            "type": "audio",
            "ward": backend.ward_id,
            "state": "paused",
            "pause_seconds": 60,
            "pause": {
                "mode": "paused",
                "by": {"id": 9, "name": "Ben Okafor"},
                "remaining_seconds": 45,
            },
        }
    )
    page.wait_for_selector("#mute[data-audio='paused']")
    assert page.inner_text("#mute") == "Audio paused 0:45 · Ben Okafor · resume"
    advance(page, 46)
    page.wait_for_selector("#mute[data-audio='sounding']")
    assert page.inner_text("#mute") == "Pause alarm audio (1:00)"  # the place's pause time


def test_audio_off_is_for_admins_and_stays_visible_until_turned_on(page_server, new_page):
    page, backend = open_ward(page_server, new_page, role="admin")
    page.click("#audio-off")
    page.wait_for_selector("#mute[data-audio='off']")
    assert ("pause/", {"mode": "off"}) in backend.audio_calls
    mute = page.locator("#mute")
    assert mute.inner_text() == "ALARM AUDIO OFF · Asha Rao · turn on"
    assert page.get_attribute("body", "data-audio") == "off"
    assert mute.evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(255, 59, 48)"
    before = bursts(page)
    backend.push(backend.alert(1, 3, "high"))
    page.wait_for_selector(".tile[data-patient='3'][data-alarm='high']")
    advance(page, 300)
    assert mute.get_attribute("data-audio") == "off" and bursts(page) == before
    mute.click()
    page.wait_for_selector("#mute[data-audio='sounding']")
    wait_bursts_above(page, before)
