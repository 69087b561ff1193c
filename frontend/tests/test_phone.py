"""The dashboard on a phone (390 x 844 CSS pixels, an iPhone 12-15): the header's controls stay
reachable and no view (ward, patient, CTG strip) scrolls sideways. Against the scripted backend (mock_backend.py)."""

from __future__ import annotations

import pytest

from frontend.tests.mock_backend import MockBackend, make_patients
from frontend.tests.test_ctg_strip import CtgRoutes
from frontend.tests.test_dashboard_client import sign_in_and_open_ward

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}


def _inside_viewport(page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (selector, box)


def _no_sideways_scroll(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


@pytest.fixture
def phone(page_server, new_page):
    page = new_page(viewport=PHONE)
    backend = MockBackend(page, patients=make_patients(6))
    CtgRoutes(page)
    sign_in_and_open_ward(page, page_server, backend)
    return page, backend


def test_the_header_fits_a_phone_and_its_controls_work(phone):
    page, _backend = phone
    for selector in ("#conn", "#who", "#signout", "#mute"):
        if page.is_visible(selector):
            _inside_viewport(page, selector)
    _inside_viewport(page, "#conn")
    _inside_viewport(page, "#signout")
    _no_sideways_scroll(page)
    page.click("#signout")  # reachable, so it can be tapped
    page.wait_for_selector("#email")


def test_ward_and_patient_views_fit_a_phone(phone):
    page, _backend = phone
    _no_sideways_scroll(page)
    tile = page.locator(".tile").first.bounding_box()
    assert tile is not None and tile["width"] <= PHONE["width"]
    page.click(".tile[data-patient='3'] .name")  # an obstetric patient (two metrics)
    page.wait_for_selector(".limits")
    page.wait_for_function("() => Number(document.getElementById('ctg-strip').dataset.points) > 0")
    _no_sideways_scroll(page)
    _inside_viewport(page, ".limits")
    _inside_viewport(page, "#ctg-strip")  # the CTG view fits too
    _inside_viewport(page, "#ctg-save")
    _inside_viewport(page, "#conn")
    assert page.console_errors == []
