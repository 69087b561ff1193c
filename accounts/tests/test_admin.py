from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role, User
from accounts.tests.mail import one_time_password
from testing.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


@pytest.fixture
def staff() -> Client:
    superuser = User.objects.create_superuser("root@example.org", "Root-Passw0rd-1")
    client = Client()
    client.force_login(superuser)
    return client


def test_createsuperuser_makes_an_admin():
    superuser = User.objects.create_superuser("boss@example.org", "Root-Passw0rd-1")
    assert superuser.role == Role.ADMIN and superuser.is_admin


def test_changelist_with_filters_and_search(staff, nurse, doctor, place):
    response = staff.get(CHANGELIST)
    assert response.status_code == 200
    assert b"nurse@example.org" in response.content
    response = staff.get(CHANGELIST, {"role__exact": "doctor", "q": "doctor"})
    assert b"doctor@example.org" in response.content
    assert b"nurse@example.org" not in response.content
    response = staff.get(CHANGELIST, {"places__id__exact": place.pk, "is_active__exact": "1"})
    assert response.status_code == 200 and b"nurse@example.org" in response.content


def test_add_form_asks_for_no_password(staff):
    response = staff.get(f"{CHANGELIST}add/")
    assert response.status_code == 200
    assert b'name="password1"' not in response.content
    assert b'name="email"' in response.content


def test_adding_a_user_in_the_admin_emails_credentials(
    staff, place, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            f"{CHANGELIST}add/",
            {
                "email": "Ward.Sister@Example.org",
                "first_name": "Leela",
                "last_name": "Das",
                "role": "nurse",
                "places": [place.pk],
                "is_active": "on",
            },
        )
    assert response.status_code == 302, response.content.decode()[-3000:]
    user = User.objects.get(email="ward.sister@example.org")
    assert user.must_change_password
    assert list(user.places.all()) == [place]
    (message,) = smtp_server.to(user.email)
    assert user.check_password(one_time_password(message))
    assert response["Location"].endswith(f"/{user.pk}/change/") or response["Location"].endswith(
        "/user/"
    )


def test_admin_add_refuses_an_existing_email(staff, nurse):
    response = staff.post(f"{CHANGELIST}add/", {"email": "NURSE@example.org", "role": "nurse"})
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact="nurse@example.org").count() == 1


def test_change_page_loads(staff, nurse):
    assert staff.get(f"{CHANGELIST}{nurse.pk}/change/").status_code == 200


def test_action_emails_a_new_one_time_password(
    staff, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    user = UserFactory(email="forgetful@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            CHANGELIST, {"action": "send_new_one_time_password", "_selected_action": [user.pk]}
        )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.must_change_password
    assert user.check_password(one_time_password(smtp_server.to(user.email)[0]))


def test_action_does_not_reissue_to_a_superuser_or_oneself(
    staff, smtp_server, celery_eager, django_capture_on_commit_callbacks
):
    root = User.objects.get(email="root@example.org")  # the signed-in superuser
    other_root = User.objects.create_superuser("owner@example.org", "Owner-Passw0rd-1")
    nurse = UserFactory(email="forgetful@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            CHANGELIST,
            {
                "action": "send_new_one_time_password",
                "_selected_action": [root.pk, other_root.pk, nurse.pk],
            },
            follow=True,
        )
    assert response.status_code == 200
    page = response.content.decode()
    assert "owner@example.org" in page and "A new one-time password goes to 1 user(s)." in page
    root.refresh_from_db()
    other_root.refresh_from_db()
    assert root.check_password("Root-Passw0rd-1") and other_root.check_password("Owner-Passw0rd-1")
    assert len(smtp_server.messages) == len(smtp_server.to("forgetful@example.org")) == 1
