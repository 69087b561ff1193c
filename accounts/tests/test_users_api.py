from __future__ import annotations

import pytest

from accounts.models import Role, User
from accounts.tests.mail import body, one_time_password
from testing.assertions import USER_FIELDS, assert_anonymous_refused, assert_error
from testing.factories import PlaceFactory, UserFactory

pytestmark = pytest.mark.django_db

USERS = "/api/users/"


def detail(user: User) -> str:
    return f"{USERS}{user.pk}/"


# --- Permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["doctor_api", "nurse_api"])
def test_clinicians_cannot_manage_users(request, client, nurse):
    api = request.getfixturevalue(client)
    assert_error(api.get(USERS), 403, "forbidden")
    assert_error(api.post(USERS, {"email": "x@example.org"}), 403, "forbidden")
    assert_error(api.get(detail(nurse)), 403, "forbidden")
    assert_error(api.patch(detail(nurse), {"role": "admin"}), 403, "forbidden")
    assert_error(api.put(detail(nurse), {}), 403, "forbidden")
    nurse.refresh_from_db()
    assert nurse.role == Role.NURSE


def test_anonymous_cannot_manage_users(api, nurse):
    assert api.get(USERS)["WWW-Authenticate"].startswith("Bearer")
    create, change = {"email": "x@example.org"}, {"role": "admin"}
    assert_anonymous_refused(api, USERS, detail(nurse), create=create, change=change)


def test_users_cannot_be_deleted(admin_api, nurse):
    assert_error(admin_api.delete(detail(nurse)), 405, "method_not_allowed")
    assert User.objects.filter(pk=nurse.pk).exists()


# --- List -----------------------------------------------------------------------------------


def test_admin_lists_users_paginated(admin_api, admin_user, doctor, nurse, place):
    response = admin_api.get(USERS)
    assert response.status_code == 200
    body = response.json()
    assert {"count", "next", "previous", "results"} <= set(body)
    assert body["count"] == 3
    emails = [u["email"] for u in body["results"]]
    assert emails == sorted(emails)
    row = next(u for u in body["results"] if u["id"] == nurse.pk)
    assert row["places"] == [place.pk]
    assert set(row) == USER_FIELDS
    page = admin_api.get(USERS, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]


def test_list_query_count_does_not_grow_with_users(admin_api, django_assert_max_num_queries):
    places = PlaceFactory.create_batch(3)
    UserFactory.create_batch(20, places=places)
    with django_assert_max_num_queries(5):  # and the audit record
        response = admin_api.get(USERS)
    assert response.json()["count"] == 21


def test_filter_by_role_place_and_active(admin_api, admin_user, doctor, nurse, place):
    other = PlaceFactory()
    away = UserFactory(email="away@example.org", places=[other], is_active=False)

    def ids(**params):
        return {u["id"] for u in admin_api.get(USERS, params).json()["results"]}

    assert ids(role="doctor") == {doctor.pk}
    assert ids(place=place.pk) == {doctor.pk, nurse.pk}
    assert ids(place=other.pk) == {away.pk}
    assert ids(is_active="false") == {away.pk}
    assert ids(is_active="true", role="nurse") == {nurse.pk}


def test_filter_with_a_bad_value_is_a_validation_error(admin_api):
    assert_error(admin_api.get(USERS, {"role": "surgeon"}), 400, "validation_error", field="role")


@pytest.mark.parametrize("value", ["-6.6e98", "9223372036854775808", "0", "x"])
def test_place_filter_beyond_what_an_id_can_be_is_a_validation_error(admin_api, value):
    assert_error(admin_api.get(USERS, {"place": value}), 400, "validation_error", field="place")


def test_search_by_email_and_names(admin_api, nurse, doctor):
    UserFactory(email="priya@example.org", first_name="Priya", last_name="Menon")

    def emails(term):
        return {u["email"] for u in admin_api.get(USERS, {"search": term}).json()["results"]}

    assert emails("menon") == {"priya@example.org"}
    assert emails("PRIYA") == {"priya@example.org"}
    assert emails("doctor@") == {"doctor@example.org"}


def test_ordering(admin_api, admin_user, doctor, nurse):
    results = admin_api.get(USERS, {"ordering": "-email"}).json()["results"]
    assert [u["email"] for u in results] == [
        "nurse@example.org",
        "doctor@example.org",
        "admin@example.org",
    ]
    results = admin_api.get(USERS, {"ordering": "-date_joined"}).json()["results"]
    assert results[0]["id"] == nurse.pk


def test_retrieve_and_missing_user(admin_api, nurse):
    assert admin_api.get(detail(nurse)).json()["email"] == nurse.email
    assert_error(admin_api.get(f"{USERS}999999/"), 404, "not_found")


# --- Create ---------------------------------------------------------------------------------


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks, smtp_server, celery_eager):
    return django_capture_on_commit_callbacks


def test_admin_creates_a_user_who_gets_a_one_time_password(
    api, admin_api, place, smtp_server, on_commit
):
    with on_commit(execute=True):
        response = admin_api.post(
            USERS,
            {
                "email": "Kavya@Example.org",
                "first_name": "Kavya",
                "last_name": "Reddy",
                "role": "doctor",
                "places": [place.pk],
            },
        )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["email"] == "kavya@example.org"
    assert created["role"] == "doctor"
    assert created["places"] == [place.pk]
    assert created["must_change_password"] is True
    assert created["is_active"] is True

    (message,) = smtp_server.to("kavya@example.org")
    assert "kavya@example.org" in body(message)
    password = one_time_password(message)
    assert len(password) >= 12

    login = api.post("/api/auth/login/", {"email": "kavya@example.org", "password": password})
    assert login.status_code == 200
    assert login.json()["user"]["must_change_password"] is True


def test_create_needs_no_password_and_stores_none_until_the_mail(admin_api):
    # No on-commit execution here: the e-mail task has not run.
    response = admin_api.post(USERS, {"email": "pending@example.org"})
    assert response.status_code == 201
    user = User.objects.get(email="pending@example.org")
    assert not user.has_usable_password()
    assert user.role == Role.NURSE


def test_create_with_an_existing_email_is_a_conflict(admin_api, nurse, on_commit, smtp_server):
    with on_commit(execute=True):
        response = admin_api.post(USERS, {"email": "Nurse@Example.org"})
    assert_error(response, 409, "email_taken", field="email")
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "email"),
        ({"email": "bad"}, "email"),
        ({"email": "a@example.org", "role": "surgeon"}, "role"),
        ({"email": "a@example.org", "places": [999999]}, "places"),
        ({"email": "a@example.org", "places": "x"}, "places"),
        ({"email": "a@example.org", "is_active": "maybe"}, "is_active"),
    ],
)
def test_create_validates(admin_api, payload, field):
    assert_error(admin_api.post(USERS, payload), 400, "validation_error", field=field)
    assert not User.objects.filter(email="a@example.org").exists()


# --- Update ---------------------------------------------------------------------------------


def test_admin_patches_role_places_and_names(admin_api, nurse, place):
    other = PlaceFactory()
    response = admin_api.patch(
        detail(nurse), {"role": "doctor", "places": [place.pk, other.pk], "first_name": "Devi"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "doctor"
    assert sorted(response.json()["places"]) == sorted([place.pk, other.pk])
    nurse.refresh_from_db()
    assert (nurse.role, nurse.first_name, nurse.last_name) == ("doctor", "Devi", "Rao")


def test_patch_cannot_change_the_email_or_the_password_flag(admin_api, nurse):
    admin_api.patch(detail(nurse), {"email": "other@example.org", "must_change_password": True})
    nurse.refresh_from_db()
    assert nurse.email == "nurse@example.org" and nurse.must_change_password is False


def test_put_replaces_and_requires_the_access_fields(admin_api, nurse, place):
    error = assert_error(admin_api.put(detail(nurse), {"first_name": "X"}), 400, "validation_error")
    assert {"role", "places", "is_active"} <= set(error["details"])
    response = admin_api.put(
        detail(nurse),
        {"first_name": "Rani", "last_name": "", "role": "nurse", "places": [], "is_active": True},
    )
    assert response.status_code == 200
    assert response.json()["places"] == []


def test_deactivating_a_user_ends_their_sessions(admin_api, api, nurse):
    tokens = api.post(
        "/api/auth/login/", {"email": nurse.email, "password": "Str0ng-Passw0rd!"}
    ).json()
    response = admin_api.patch(detail(nurse), {"is_active": False})
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert_error(
        api.post("/api/auth/refresh/", {"refresh": tokens["refresh"]}), 401, "token_not_valid"
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert_error(api.get("/api/auth/me/"), 401, "user_inactive")


def test_admin_cannot_demote_or_deactivate_themselves(admin_api, admin_user):
    assert_error(admin_api.patch(detail(admin_user), {"role": "nurse"}), 403, "cannot_demote_self")
    assert_error(
        admin_api.patch(detail(admin_user), {"is_active": False}), 403, "cannot_demote_self"
    )
    assert admin_api.patch(detail(admin_user), {"first_name": "Boss"}).status_code == 200
    admin_user.refresh_from_db()
    assert admin_user.is_admin and admin_user.is_active


def test_update_validates(admin_api, nurse):
    assert_error(
        admin_api.patch(detail(nurse), {"places": [999999]}),
        400,
        "validation_error",
        field="places",
    )


def test_admin_sends_a_new_one_time_password(admin_api, api, nurse, smtp_server, on_commit):
    tokens = api.post(
        "/api/auth/login/", {"email": nurse.email, "password": "Str0ng-Passw0rd!"}
    ).json()
    with on_commit(execute=True):
        response = admin_api.post(f"{detail(nurse)}send-one-time-password/")
    assert response.status_code == 202, response.content
    assert response.json()["must_change_password"] is True
    password = one_time_password(smtp_server.to(nurse.email)[0])
    nurse.refresh_from_db()
    assert nurse.check_password(password) and not nurse.check_password("Str0ng-Passw0rd!")
    assert_error(
        api.post("/api/auth/refresh/", {"refresh": tokens["refresh"]}), 401, "token_not_valid"
    )


def test_send_one_time_password_rules(admin_api, nurse_api, nurse, smtp_server, on_commit):
    assert_error(nurse_api.post(f"{detail(nurse)}send-one-time-password/"), 403, "forbidden")
    assert_error(admin_api.post(f"{USERS}999999/send-one-time-password/"), 404, "not_found")
    nurse.is_active = False
    nurse.save(update_fields=["is_active"])
    with on_commit(execute=True):
        response = admin_api.post(f"{detail(nurse)}send-one-time-password/")
    assert_error(response, 409, "user_inactive")
    assert smtp_server.messages == []


def test_a_user_created_inactive_gets_credentials_when_activated(admin_api, smtp_server, on_commit):
    with on_commit(execute=True):
        response = admin_api.post(USERS, {"email": "later@example.org", "is_active": False})
    assert response.status_code == 201 and response.json()["is_active"] is False
    assert smtp_server.messages == []
    user = User.objects.get(email="later@example.org")
    with on_commit(execute=True):
        assert admin_api.patch(detail(user), {"is_active": True}).status_code == 200
    (message,) = smtp_server.to("later@example.org")
    user.refresh_from_db()
    assert user.check_password(one_time_password(message))
    # Deactivating and activating again does not send another one.
    with on_commit(execute=True):
        admin_api.patch(detail(user), {"is_active": False})
        admin_api.patch(detail(user), {"is_active": True})
    assert len(smtp_server.messages) == 1


def test_one_time_password_is_not_reissued_to_a_superuser_or_oneself(
    admin_api, admin_user, smtp_server, on_commit
):
    root = User.objects.create_superuser("root@example.org", "Root-Passw0rd-1")
    with on_commit(execute=True):
        refused_root = admin_api.post(f"{detail(root)}send-one-time-password/")
        refused_self = admin_api.post(f"{detail(admin_user)}send-one-time-password/")
    assert_error(refused_root, 403, "cannot_reissue_superuser")
    assert_error(refused_self, 403, "cannot_reissue_self")
    root.refresh_from_db()
    admin_user.refresh_from_db()
    assert root.check_password("Root-Passw0rd-1") and not root.must_change_password
    assert admin_user.has_usable_password() and not admin_user.must_change_password
    assert smtp_server.messages == []
