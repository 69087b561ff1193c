"""Demo data: one maternity hospital in Bengaluru, its labour ward and adult HDU, patients with
a bedside monitor each, and an admin, a doctor and a nurse to sign in with.

Idempotent: every object is looked up by its natural key first (place name, ward name, e-mail,
MRN, device serial), so running it again creates nothing twice and changes nothing that people
edited since. ``make run`` calls it on every start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from clinical.models import Device, Patient, Place, Ward
from clinical.services import device_create, patient_create, place_create, ward_create

DEMO_PLACE_NAME = "Janitri Demo Maternity Hospital"
DEMO_PLACE_ADDRESS = "80 Feet Road, Koramangala, Bengaluru, Karnataka 560034"
LABOUR_WARD = "Labour Ward"
ADULT_WARD = "Adult HDU"
DEMO_SERIAL_PREFIX = "DEMO-"
OBSTETRIC_MODEL = "Janitri Keyar"
ADULT_MODEL = "Bedside Heart Rate Monitor"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    first_name: str
    last_name: str


DEMO_LOGINS = (
    DemoLogin("admin@demo.local", "Demo-Admin-2026", Role.ADMIN, "Arun", "Menon"),
    DemoLogin("doctor@demo.local", "Demo-Doctor-2026", Role.DOCTOR, "Kavitha", "Rao"),
    DemoLogin("nurse@demo.local", "Demo-Nurse-2026", Role.NURSE, "Sushma", "Gowda"),
)

OBSTETRIC_NAMES = (
    "Priya Sharma",
    "Ananya Reddy",
    "Kavya Nair",
    "Lakshmi Iyer",
    "Deepika Hegde",
    "Meena Gowda",
    "Sunita Patil",
    "Fatima Begum",
    "Divya Menon",
    "Harpreet Kaur",
    "Shalini Kulkarni",
    "Nandini Murthy",
)
ADULT_PATIENTS = (  # (name, sex)
    ("Ramesh Kumar", "M"),
    ("Geetha Krishnan", "F"),
    ("Mohammed Irfan", "M"),
    ("Shobha Rani", "F"),
    ("Venkatesh Prasad", "M"),
    ("Arjun Singh", "M"),
)


class Command(BaseCommand):
    help = "Create the demo hospital, wards, patients, devices and logins (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--patients", type=int, default=12, help="How many demo patients (default 12)."
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Set the demo logins' passwords back to the printed ones.",
        )

    def handle(self, *args: Any, patients: int, reset_passwords: bool, **options: Any) -> None:
        if not 2 <= patients <= 500:
            raise CommandError("--patients must be between 2 and 500.")
        with transaction.atomic():
            place = self._place()
            labour, hdu = self._ward(place, LABOUR_WARD), self._ward(place, ADULT_WARD)
            for login in DEMO_LOGINS:
                self._user(login, place, reset_password=reset_passwords)
            # A maternity hospital: two thirds of the beds are in labour.
            adults = patients // 3
            created = 0
            for index in range(patients - adults):
                created += self._patient_with_device(place, labour, "obstetric", index)
            for index in range(adults):
                created += self._patient_with_device(place, hdu, "adult", index)

        self.stdout.write(
            f"Demo data ready: {place.name} (place {place.id}), wards {labour.name!r} "
            f"({labour.id}) and {hdu.name!r} ({hdu.id}), {patients} patients "
            f"({created} new this run), each with a device."
        )
        self.stdout.write("Demo logins (e-mail / password):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.role:<6}  {login.email:<20} {login.password}")

    def _place(self) -> Place:
        place = Place.objects.filter(name=DEMO_PLACE_NAME).order_by("id").first()
        return place or place_create(
            name=DEMO_PLACE_NAME, kind=Place.Kind.HOSPITAL, address=DEMO_PLACE_ADDRESS
        )

    def _ward(self, place: Place, name: str) -> Ward:
        ward = Ward.objects.filter(place=place, name=name).first()
        return ward or ward_create(place=place, name=name)

    def _user(self, login: DemoLogin, place: Place, *, reset_password: bool) -> User:
        user = User.objects.filter(email__iexact=login.email).first()
        if user is None:
            manager = User.objects
            make = manager.create_superuser if login.role == Role.ADMIN else manager.create_user
            user = make(
                login.email,
                login.password,
                role=login.role,
                first_name=login.first_name,
                last_name=login.last_name,
            )
        elif reset_password:
            user.set_password(login.password)
            user.must_change_password = False
            user.save(update_fields=["password", "must_change_password"])
        if login.role != Role.ADMIN:
            user.places.add(place)
        return user

    def _patient_with_device(self, place: Place, ward: Ward, profile: str, index: int) -> int:
        """Create the demo patient number ``index`` of this profile and its device; 1 if new."""
        obstetric = profile == Patient.Profile.OBSTETRIC
        code = "OB" if obstetric else "AD"
        mrn = f"JDM-{code}-{index + 1:04d}"
        patient = Patient.objects.filter(place=place, mrn=mrn).first()
        created = patient is None
        if patient is None:
            sex: str
            if obstetric:
                name, sex = OBSTETRIC_NAMES[index % len(OBSTETRIC_NAMES)], Patient.Sex.FEMALE
                age = 21 + (index * 3) % 15
            else:
                name, sex = ADULT_PATIENTS[index % len(ADULT_PATIENTS)]
                age = 42 + (index * 7) % 35
            cycle = index // (len(OBSTETRIC_NAMES) if obstetric else len(ADULT_PATIENTS))
            if cycle:
                name = f"{name} ({cycle + 1})"
            today = timezone.localdate()
            patient = patient_create(
                place=place,
                ward=ward,
                name=name,
                mrn=mrn,
                sex=sex,
                monitoring_profile=profile,
                date_of_birth=date(today.year - age, 1 + index % 12, 1 + (index * 5) % 28),
                bed=f"{'L' if obstetric else 'H'}-{index + 1:02d}",
                admitted_at=timezone.now() - timedelta(hours=2 + index * 3),
            )

        serial = f"{DEMO_SERIAL_PREFIX}{code}-{index + 1:03d}"
        patient_has_device = Device.objects.filter(patient=patient).exists()
        if not patient_has_device and not Device.objects.filter(serial=serial).exists():
            # The plain token is not kept: the simulator issues itself a fresh one.
            device_create(
                serial=serial,
                model=OBSTETRIC_MODEL if obstetric else ADULT_MODEL,
                place=place,
                patient=patient,
            )
        return int(created)
