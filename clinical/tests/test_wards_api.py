from __future__ import annotations

import pytest

from clinical.models import Ward
from clinical.services import ward_create
from common.errors import Conflict
from testing.assertions import assert_anonymous_refused, assert_error, assert_sees_only
from testing.factories import PlaceFactory, WardFactory

pytestmark = pytest.mark.django_db


URL = "/api/wards/"


def detail(ward: Ward) -> str:
    return f"{URL}{ward.id}/"


def test_anonymous_is_refused(api, ward):
    create = {"place": ward.place_id, "name": "X"}
    assert_anonymous_refused(api, URL, detail(ward), create=create, change={"name": "X"})


@pytest.mark.parametrize("client", ["doctor_api", "nurse_api"])
def test_members_see_only_wards_of_their_places(request, client, ward):
    other = WardFactory()
    body = assert_sees_only(request.getfixturevalue(client), URL, ward, other)
    assert body["results"][0] == {"id": ward.id, "place": ward.place_id, "name": ward.name}


def test_admin_sees_all_wards(admin_api, ward):
    other = WardFactory()
    assert {w["id"] for w in admin_api.get(URL).json()["results"]} == {ward.id, other.id}


def test_admin_creates_and_renames_a_ward(admin_api, place):
    response = admin_api.post(URL, {"place": place.id, "name": "Labour Ward"})
    assert response.status_code == 201, response.content
    ward = Ward.objects.get(id=response.json()["id"])
    assert (ward.place_id, ward.name) == (place.id, "Labour Ward")

    response = admin_api.patch(detail(ward), {"name": "Labour Ward 2"})
    assert response.status_code == 200
    assert response.json()["name"] == "Labour Ward 2"
    response = admin_api.put(detail(ward), {"place": place.id, "name": "Antenatal Ward"})
    assert response.status_code == 200
    ward.refresh_from_db()
    assert ward.name == "Antenatal Ward"


@pytest.mark.parametrize("client", ["doctor_api", "nurse_api"])
def test_clinicians_may_not_create_or_change_wards(request, client, ward):
    api = request.getfixturevalue(client)
    assert_error(api.post(URL, {"place": ward.place_id, "name": "New"}), 403, "forbidden")
    assert_error(api.patch(detail(ward), {"name": "New"}), 403, "forbidden")
    assert not Ward.objects.filter(name="New").exists()


def test_duplicate_name_in_a_place_is_a_conflict(admin_api, ward):
    assert_error(
        admin_api.post(URL, {"place": ward.place_id, "name": ward.name}),
        409,
        "conflict",
        field="name",
    )
    second = WardFactory(place=ward.place)
    assert_error(
        admin_api.patch(detail(second), {"name": ward.name}), 409, "conflict", field="name"
    )


def test_same_name_in_another_place_is_fine(admin_api, ward):
    other = PlaceFactory()
    response = admin_api.post(URL, {"place": other.id, "name": ward.name})
    assert response.status_code == 201


def test_renaming_to_its_own_name_is_not_a_conflict(admin_api, ward):
    assert admin_api.patch(detail(ward), {"name": ward.name}).status_code == 200


def test_a_ward_does_not_move_between_places(admin_api, ward):
    other = PlaceFactory()
    assert_error(
        admin_api.patch(detail(ward), {"place": other.id}), 400, "validation_error", field="place"
    )
    ward.refresh_from_db()
    assert ward.place_id != other.id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"place": "", "name": "X"}, "place"),
        ({"place": 999999, "name": "X"}, "place"),
        ({"place": "abc", "name": "X"}, "place"),
        ({"place": None, "name": "X"}, "place"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_invalid_ward_is_400(admin_api, place, payload, field):
    payload = {"place": place.id, **payload}
    assert_error(admin_api.post(URL, payload), 400, "validation_error", field=field)


def test_place_is_required(admin_api):
    assert_error(admin_api.post(URL, {"name": "X"}), 400, "validation_error", field="place")


def test_service_refuses_duplicate_names_too(ward):
    with pytest.raises(Conflict):
        ward_create(place=ward.place, name=ward.name)


def test_delete_is_not_offered(admin_api, ward):
    assert_error(admin_api.delete(detail(ward)), 405, "method_not_allowed")


def test_filter_search_ordering_pagination(admin_api):
    a, b = PlaceFactory(name="Alpha Hospital"), PlaceFactory(name="Beta Clinic")
    WardFactory(place=a, name="Labour Ward")
    WardFactory(place=a, name="Adult HDU")
    WardFactory(place=b, name="Labour Ward")

    def names(params: dict) -> list[tuple[int, str]]:
        return [(w["place"], w["name"]) for w in admin_api.get(URL, params).json()["results"]]

    assert names({"place": a.id}) == [(a.id, "Adult HDU"), (a.id, "Labour Ward")]
    assert names({"search": "labour"}) == [(a.id, "Labour Ward"), (b.id, "Labour Ward")]
    assert names({"search": "beta"}) == [(b.id, "Labour Ward")]
    assert names({"ordering": "-name", "place": a.id}) == [
        (a.id, "Labour Ward"),
        (a.id, "Adult HDU"),
    ]
    assert names({"place": 999999}) == []
    assert_error(admin_api.get(URL, {"place": "x"}), 400, "validation_error")
    page = admin_api.get(URL, {"page_size": 1}).json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"]


def test_filtering_by_an_invisible_place_is_empty(doctor_api, ward):
    other = WardFactory()
    assert doctor_api.get(URL, {"place": other.place_id}).json()["results"] == []


def test_list_makes_a_fixed_number_of_queries(doctor_api, place, django_assert_max_num_queries):
    WardFactory.create_batch(15, place=place)
    # user, their places, count, page
    with django_assert_max_num_queries(5):
        response = doctor_api.get(URL)
    assert response.json()["count"] == 15
