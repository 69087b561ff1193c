"""The ward view follows the hospital's ADT feed, end to end: the system Chromium against a real
Daphne, a real MLLP listener process and a real MLLP client sending as a patient administration
system. A01 makes the tile appear in bed order, A02 moves it to its new bed, A03 takes it off
the ward, each without a reload."""

from __future__ import annotations

import pytest

from frontend.tests.live_stack import LiveStack
from hl7v2.mllp import mllp_send_sync
from testing.hl7 import adt_message
from testing.processes import Hl7Listener, django_run

pytestmark = [pytest.mark.browser, pytest.mark.live]

ENROL = """
from clinical.models import Place
from hl7v2.models import Hl7Sender
place = Place.objects.get(pk={place})
Hl7Sender.objects.create(place=place, name="PAS", address="127.0.0.1", sending_application="PAS")
result = place.id
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory, browser):
    # `browser` first: without Chromium the module skips before starting any server.
    workdir = tmp_path_factory.mktemp("adt")
    live = LiveStack(workdir)
    listener = None
    try:
        live.seed = live.prepare(SEED_BEDS="3", SEED_HISTORY_SECONDS="60")
        django_run(live.env, ENROL.format(place=live.seed["place"]))
        live.start()
        listener = Hl7Listener(live.env, workdir / "hl7.log").wait_ready()
        live.seed["mllp_port"] = listener.port
        yield live
    finally:
        if listener is not None:
            listener.stop()
        live.close()


def send(stack: LiveStack, message: str) -> None:
    answer = mllp_send_sync("127.0.0.1", stack.seed["mllp_port"], message, timeout=15)
    assert "MSA|AA|" in answer, answer


BEDS = "() => [...document.querySelectorAll('.tiles .tile .bed')].map((b) => b.textContent)"


def beds_are(page, beds: list[str]) -> None:
    page.wait_for_function(
        f"(want) => JSON.stringify(({BEDS})()) === JSON.stringify(want)", arg=beds
    )


def test_a_tile_appears_moves_and_leaves_with_a01_a02_a03(stack, new_page):
    page = new_page()
    page.goto(stack.url + "/")
    page.fill("#email", stack.seed["nurse"])
    page.fill("#password", stack.seed["password"])
    page.click("button[type=submit]")
    page.click(f"a.ward-link[data-ward='{stack.seed['ward']}']")
    beds_are(page, ["Bed 1", "Bed 2", "Bed 3"])
    page.wait_for_selector("#conn[data-state='open']")
    snapshots = page.get_attribute("[data-snapshots]", "data-snapshots")

    ward = "Labour Ward A"
    send(stack, adt_message("A01", "BR-1", mrn="BR-MRN", ward=ward, bed="9", name="KING^ADA"))
    beds_are(page, ["Bed 1", "Bed 2", "Bed 3", "Bed 9"])
    tile = page.locator(".tile", has_text="ADA KING")
    assert tile.count() == 1

    send(stack, adt_message("A02", "BR-2", mrn="BR-MRN", ward=ward, bed="1A", name="KING^ADA"))
    beds_are(page, ["Bed 1", "Bed 1A", "Bed 2", "Bed 3"])
    assert page.locator(".tiles .tile").nth(1).get_attribute("data-patient") == (
        tile.get_attribute("data-patient")
    )

    send(stack, adt_message("A03", "BR-3", mrn="BR-MRN", ward=ward))
    beds_are(page, ["Bed 1", "Bed 2", "Bed 3"])
    assert page.locator(".tile", has_text="ADA KING").count() == 0
    # Followed live, not by asking for a fresh snapshot.
    assert page.get_attribute("[data-snapshots]", "data-snapshots") == snapshots
