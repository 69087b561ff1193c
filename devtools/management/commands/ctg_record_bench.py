"""``manage.py ctg_record_bench``: how long the CTG record (GET /api/patients/<id>/ctg.pdf)
takes for a long labour (docs/performance.md, "The CTG record").

Stores ``--hours`` of the simulator's cardiotocogram (maternal and fetal heart rate, uterine
activity) at ``--hz`` readings per second and channel for a new patient, inside a transaction
that is rolled back at the end (nothing stays in the database), then times the record's two
steps as the endpoint runs them: reading (one query, the analysis of every 30-minute window)
and drawing the PDF.

Examples::

    manage.py ctg_record_bench                       # 12 hours at 4 Hz, 1 cm/min
    manage.py ctg_record_bench --hours 24 --speed 3 --out /tmp/ctg.pdf
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from clinical.models import Patient, Place, Ward
from devtools.ctg_trace import CtgTrace
from monitoring.ctg_record.data import ctg_record_data
from monitoring.ctg_record.render import ctg_record_pages, ctg_record_render
from monitoring.readings import ReadingIn, readings_store

CHUNK = 20_000


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Time the CTG record PDF of a long labour (stored and rolled back)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--hours", type=float, default=12.0)
        parser.add_argument("--hz", type=int, default=4, help="readings per second per channel")
        parser.add_argument("--speed", type=int, choices=(1, 3), default=1)
        parser.add_argument("--out", default=None, help="also write the PDF here")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                self._run(options)
                raise _Rollback
        except _Rollback:
            pass

    def _run(self, options: dict[str, Any]) -> None:
        seconds = int(options["hours"] * 3600)
        hz = options["hz"]
        place = Place.objects.create(name="Benchmark hospital")
        ward = Ward.objects.create(place=place, name="Benchmark labour ward")
        patient = Patient.objects.create(
            name="Benchmark patient",
            mrn="BENCH-1",
            sex="F",
            monitoring_profile="obstetric",
            place=place,
            ward=ward,
            bed="1",
        )
        end = datetime.now(tz=UTC).replace(microsecond=0)
        start = end - timedelta(seconds=seconds)
        trace = CtgTrace(
            random.Random(options["seed"]), maternal=lambda t: 85, prolonged_every=7200
        )
        began = time.perf_counter()
        batch: list[ReadingIn] = []
        stored = 0
        for second in range(seconds):
            values = trace.next(float(second))
            for k in range(hz):
                at = start + timedelta(seconds=second + k / hz)
                for metric, value in values.items():
                    if value is not None:
                        batch.append(
                            ReadingIn(
                                patient_id=patient.id,
                                device_id=None,
                                metric=metric,
                                value=value,
                                recorded_at=at,
                                seq=None,
                            )
                        )
            if len(batch) >= CHUNK:
                readings_store(readings=batch)
                stored += len(batch)
                batch = []
        if batch:
            readings_store(readings=batch)
            stored += len(batch)
        self.stdout.write(
            f"stored {stored} readings ({options['hours']:g} h at {hz} Hz, 3 channels) "
            f"in {time.perf_counter() - began:.1f} s"
        )

        began = time.perf_counter()
        data = ctg_record_data(patient=patient, start=start, end=end, printed_by="benchmark")
        read = time.perf_counter() - began
        began = time.perf_counter()
        pdf = ctg_record_render(data=data, speed=options["speed"])
        drawn = time.perf_counter() - began
        pages = len(ctg_record_pages(data=data, speed=options["speed"]))
        self.stdout.write(
            f"record of {options['hours']:g} h at {options['speed']} cm/min: {pages} pages, "
            f"{len(pdf) / 1e6:.2f} MB, {len(data.windows)} analysed windows\n"
            f"  read and analyse: {read:.2f} s\n"
            f"  draw the PDF:     {drawn:.2f} s\n"
            f"  total:            {read + drawn:.2f} s"
        )
        if options["out"]:
            Path(options["out"]).write_bytes(pdf)
            self.stdout.write(f"written to {options['out']}")
