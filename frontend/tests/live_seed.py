"""Seed the database of a live test server: run as ``python -m frontend.tests.live_seed`` with
the server's DATABASE_URL; prints the ids, logins and device tokens as JSON.

A ward of a maternity hospital with adult and obstetric patients and ten minutes of history,
a second hospital the test users do not belong to, a nurse and a doctor.
"""

from __future__ import annotations

import json
import math
import os
import random
from datetime import timedelta

BEDS = int(os.environ.get("SEED_BEDS", "12"))
HISTORY_SECONDS = int(os.environ.get("SEED_HISTORY_SECONDS", "600"))

NAMES = [
    "Lakshmi Devi",
    "Priya Sharma",
    "Anjali Verma",
    "Fatima Begum",
    "Kavya Reddy",
    "Sunita Yadav",
    "Meena Kumari",
    "Deepa Nair",
    "Rekha Patil",
    "Shabana Khan",
    "Pooja Gupta",
    "Nandini Iyer",
]


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.utils import timezone

    from accounts.models import Role
    from monitoring.models import Reading
    from testing.factories import (
        DEFAULT_PASSWORD,
        DeviceFactory,
        PatientFactory,
        PlaceFactory,
        UserFactory,
        WardFactory,
    )

    rng = random.Random(7)
    place = PlaceFactory(name="Government Maternity Hospital, Jaipur")
    ward = WardFactory(place=place, name="Labour Ward A")
    other_place = PlaceFactory(name="District Hospital, Ajmer")
    other_ward = WardFactory(place=other_place, name="Antenatal Ward")
    nurse, doctor = (
        UserFactory(role=role, places=[place], email=email, first_name=first, last_name=last)
        for role, email, first, last in [
            (Role.NURSE, "nurse@example.org", "Asha", "Rao"),
            (Role.DOCTOR, "doctor@example.org", "Vikram", "Mehta"),
        ]
    )
    now = timezone.now()
    patients = []
    readings = []
    for i in range(BEDS):
        obstetric = i % 3 != 2
        patient = PatientFactory(
            ward=ward,
            name=NAMES[i % len(NAMES)],
            bed=str(i + 1),
            monitoring_profile="obstetric" if obstetric else "adult",
        )
        device = DeviceFactory(patient=patient, serial=f"JAN-{i + 1:05d}", last_seen_at=now)
        base_hr = rng.randint(72, 96)
        base_fhr = rng.randint(128, 150)
        seq = 0
        for s in range(HISTORY_SECONDS, 0, -3):
            at = now - timedelta(seconds=s)
            rates = {"heart_rate": base_hr + 4 * math.sin(s / 40 + i) + rng.uniform(-2, 2)}
            if obstetric:
                rates["fetal_heart_rate"] = base_fhr + 8 * math.sin(s / 25 + i) + rng.uniform(-4, 4)
            for metric, bpm in rates.items():
                seq += 1
                readings.append(
                    Reading(
                        patient=patient,
                        device=device,
                        metric=metric,
                        value=round(bpm),
                        recorded_at=at,
                        seq=seq,
                    )
                )
        patients.append(
            {
                "id": patient.id,
                "bed": patient.bed,
                "name": patient.name,
                "profile": patient.monitoring_profile,
                "device": device.id,
                "token": device.token,
                "next_seq": seq + 1,
                "base_hr": base_hr,
                "base_fhr": base_fhr,
            }
        )
    Reading.objects.bulk_create(readings, batch_size=2000)
    outsider = PatientFactory(ward=other_ward, name="Outside Patient", bed="1")
    print(
        json.dumps(
            {
                "password": DEFAULT_PASSWORD,
                "nurse": nurse.email,
                "doctor": doctor.email,
                "place": place.id,
                "ward": ward.id,
                "other_ward": other_ward.id,
                "outsider_patient": outsider.id,
                "patients": patients,
            }
        )
    )


if __name__ == "__main__":
    main()
