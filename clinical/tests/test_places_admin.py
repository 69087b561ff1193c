from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from clinical.models import Place
from testing.factories import PatientFactory, PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.org", "Str0ng-Passw0rd!"))
    return client


def place_form(wards: tuple[str, ...] = (), **fields: str) -> dict[str, str]:
    """The place admin form: ``fields``, and its ward inline with a new row per ward name."""
    form = {**fields, "wards-TOTAL_FORMS": str(len(wards)), "wards-INITIAL_FORMS": "0"}
    form.update({f"wards-{i}-name": name for i, name in enumerate(wards)})
    return form


def test_place_list_counts_wards_and_admitted_patients(staff_client, patient):
    WardFactory(place=patient.place)
    PatientFactory(ward=patient.ward, discharged_at=patient.admitted_at.replace(year=2099))
    response = staff_client.get("/admin/clinical/place/")
    assert response.status_code == 200
    row = next(r for r in response.context["cl"].result_list if r.id == patient.place_id)
    assert (row.ward_count, row.admitted_count) == (2, 1)


@pytest.mark.parametrize(
    "query",
    ["", "?q=Bengaluru", "?kind__exact=clinic", "?is_active__exact=1", "?o=-4"],
)
def test_place_list_search_and_filters(staff_client, place, query):
    assert staff_client.get(f"/admin/clinical/place/{query}").status_code == 200


def test_place_webhook_secret_is_kept_when_left_blank(staff_client, place):
    place.webhook_secret = "old-secret"
    place.save()
    url = f"/admin/clinical/place/{place.id}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b"old-secret" not in page.content
    form = place_form(
        name=place.name,
        kind="hospital",
        address=place.address,
        is_active="on",
        webhook_url="",
        webhook_secret="",
    )
    assert staff_client.post(url, form).status_code == 302
    place.refresh_from_db()
    assert place.webhook_secret == "old-secret"
    staff_client.post(url, {**form, "clear_webhook_secret": "on"})
    place.refresh_from_db()
    assert place.webhook_secret == ""


def test_admin_adds_a_place_with_a_ward(staff_client):
    form = place_form(
        ("Labour Ward",),
        name="Rainbow Clinic",
        kind="clinic",
        address="Marathahalli",
        is_active="on",
    )
    response = staff_client.post("/admin/clinical/place/add/", form)
    assert response.status_code == 302
    place = Place.objects.get(name="Rainbow Clinic")
    assert list(place.wards.values_list("name", flat=True)) == ["Labour Ward"]


@pytest.mark.parametrize("query", ["", "?q=Ward", "?place__id__exact=1", "?o=3"])
def test_ward_list_search_and_filters(staff_client, ward, query):
    response = staff_client.get(f"/admin/clinical/ward/{query}")
    assert response.status_code == 200


def test_duplicate_ward_name_is_a_form_error(staff_client, ward):
    response = staff_client.post(
        "/admin/clinical/ward/add/", {"place": ward.place_id, "name": ward.name}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors


def test_ward_place_is_read_only_once_created(staff_client, ward):
    other = PlaceFactory()
    url = f"/admin/clinical/ward/{ward.id}/change/"
    response = staff_client.post(url, {"place": other.id, "name": "Renamed"})
    assert response.status_code == 302
    ward.refresh_from_db()
    assert ward.place_id != other.id
    assert ward.name == "Renamed"


def test_admin_refuses_non_http_webhooks(staff_client):
    form = place_form(name="Rainbow Clinic", kind="clinic", webhook_url="ftp://files.example.org/")
    response = staff_client.post("/admin/clinical/place/add/", form)
    assert response.status_code == 200
    assert "webhook_url" in response.context["adminform"].form.errors
    assert not Place.objects.filter(name="Rainbow Clinic").exists()
