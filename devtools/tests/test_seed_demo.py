from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from clinical.models import Device, Patient, Place, Ward
from devtools.management.commands.seed_demo import DEMO_LOGINS, DEMO_PLACE_NAME
from testing.clients import bearer_client

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    memberships = User.places.through.objects.count()
    return (*(m.objects.count() for m in (Place, Ward, Patient, Device, User)), memberships)


def test_seed_creates_the_demo_hospital():
    output = seed()
    place = Place.objects.get(name=DEMO_PLACE_NAME)
    assert "Bengaluru" in place.address
    labour = Ward.objects.get(place=place, name="Labour Ward")
    hdu = Ward.objects.get(place=place, name="Adult HDU")

    patients = Patient.objects.filter(place=place)
    assert patients.count() == 12
    obstetric = patients.filter(monitoring_profile="obstetric")
    adult = patients.filter(monitoring_profile="adult")
    assert obstetric.count() and adult.count()
    assert set(obstetric.values_list("ward", flat=True)) == {labour.id}
    assert set(adult.values_list("ward", flat=True)) == {hdu.id}
    assert set(obstetric.values_list("sex", flat=True)) == {"F"}
    assert all(p.bed and p.mrn and p.date_of_birth for p in patients)
    assert patients.values("mrn").distinct().count() == 12

    devices = Device.objects.filter(place=place)
    assert devices.count() == 12
    assert set(devices.values_list("patient", flat=True)) == set(
        patients.values_list("id", flat=True)
    )
    assert all(len(d.token_hash) == 64 and d.is_active and d.model for d in devices)
    assert devices.values("token_hash").distinct().count() == 12

    for login in DEMO_LOGINS:
        user = User.objects.get(email=login.email)
        assert user.role == login.role
        assert user.check_password(login.password)
        assert login.email in output and login.password in output
        if login.role == "admin":
            assert user.is_admin and user.is_staff and user.is_superuser
        else:
            assert list(user.places.all()) == [place]


def test_seed_twice_creates_nothing_twice():
    seed()
    before = counts()
    output = seed()
    assert counts() == before
    assert "0 new this run" in output


def test_seed_keeps_what_people_changed():
    seed()
    patient = Patient.objects.get(mrn="JDM-OB-0001")
    patient.name = "Renamed By Nurse"
    patient.save()
    device = Device.objects.get(patient=patient)
    device.patient = None
    device.save()
    nurse = User.objects.get(email="nurse@demo.local")
    nurse.set_password("Changed-Passw0rd!")
    nurse.save()

    seed()
    patient.refresh_from_db()
    assert patient.name == "Renamed By Nurse"
    assert Device.objects.count() == 12  # no second device under the same serial
    nurse.refresh_from_db()
    assert nurse.check_password("Changed-Passw0rd!")

    seed("--reset-passwords")
    nurse.refresh_from_db()
    assert nurse.check_password("Demo-Nurse-2026")


def test_patients_option_grows_the_census():
    seed("--patients", "4")
    assert Patient.objects.count() == 4
    seed("--patients", "30")
    assert Patient.objects.count() == 30
    assert Device.objects.count() == 30
    assert Patient.objects.values("name").distinct().count() == 30


@pytest.mark.parametrize("value", ["1", "100000"])
def test_patients_option_is_bounded(value):
    with pytest.raises(CommandError):
        seed("--patients", value)
    assert not Place.objects.exists()


def test_demo_nurse_sees_the_demo_patients_over_rest():
    seed()
    nurse = User.objects.get(email="nurse@demo.local")
    body = bearer_client(nurse).get("/api/patients/", {"active": "true"}).json()
    assert body["count"] == 12
    assert all(p["device"] for p in body["results"])
