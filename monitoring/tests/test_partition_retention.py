"""Retention of the readings table's day partitions on PostgreSQL: whole old days dropped
after the readings around alerts are archived, a run that stopped finished by the next, the
default partition's old rows expired; and the command that creates partitions and applies it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert
from monitoring.models import Reading, ReadingArchive, ReadingKey
from monitoring.partitions import (
    partition_name,
    readings_partitions_ensure,
    readings_retention_apply,
)
from monitoring.readings import readings_store
from monitoring.tests.test_partitions import (
    D0,
    _at,
    _checks_done,
    _exists,
    _reading,
    postgres_only,
)
from testing.factories import DeviceFactory, PatientFactory


@postgres_only
@pytest.mark.django_db
def test_retention_is_off_by_default(device):
    assert settings.READINGS_RETENTION_DAYS == 0
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    result = readings_retention_apply(now=_at(D0 + timedelta(days=400), 0))
    assert result.dropped == [] and "off" in result.skipped
    assert _exists(partition_name(D0)) and Reading.objects.count() == 1


@postgres_only
@pytest.mark.django_db
def test_retention_drops_whole_old_days_after_archiving_the_readings_around_alerts(settings):
    settings.READINGS_ARCHIVE_BEFORE_MINUTES = 60
    settings.READINGS_ARCHIVE_AFTER_MINUTES = 30
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=2)
    day1, day2 = D0 + timedelta(days=1), D0 + timedelta(days=2)
    patient = PatientFactory()
    alerted, other = DeviceFactory(patient=patient), DeviceFactory(patient=PatientFactory())
    # The alert was open 10:00-10:30 on D0: readings from 09:00 to 11:00 are kept.
    Alert.objects.create(
        patient=patient,
        kind="bradycardia",
        priority="high",
        state="resolved",
        message="low",
        raised_at=_at(D0, 10),
        resolved_at=_at(D0, 10, 30),
    )
    # A second one raised late on day1 and still open keeps day1's evening to the end.
    Alert.objects.create(
        patient=patient,
        kind="device_offline",
        priority="medium",
        message="offline",
        raised_at=_at(day1, 23, 30),
    )
    times = {
        "early": _at(D0, 8, 59),
        "before": _at(D0, 9, 0),
        "during": _at(D0, 10, 15),
        "after": _at(D0, 10, 59),
        "late": _at(D0, 11, 0),
        "day1 noon": _at(day1, 12),
        "day1 evening": _at(day1, 22, 45),
        "day2": _at(day2, 9),
    }
    ids = {}
    for seq, (label, at) in enumerate(times.items(), start=1):
        [row] = readings_store(readings=[_reading(alerted, seq=seq, at=at)])
        ids[label] = row.id
    [other_row] = readings_store(readings=[_reading(other, seq=1, at=_at(D0, 10, 15))])

    # Thirty days' retention, three days later than D0 + 30: D0 and day1 are past it.
    now = _at(day2 + timedelta(days=30), 8)
    _checks_done()
    with CaptureQueriesContext(connection) as captured:
        result = readings_retention_apply(now=now, days=30)

    assert result.dropped == [partition_name(D0), partition_name(day1)]
    assert not _exists(partition_name(D0)) and not _exists(partition_name(day1))
    assert _exists(partition_name(day2))
    archived = set(ReadingArchive.objects.values_list("id", flat=True))
    assert archived == {ids["before"], ids["during"], ids["after"], ids["day1 evening"]}
    assert result.archived == 4
    copy = ReadingArchive.objects.get(id=ids["during"])
    assert (copy.patient_id, copy.device_id, copy.seq, copy.value) == (
        alerted.patient_id,
        alerted.id,
        3,
        80,
    )
    assert copy.recorded_at == times["during"] and copy.archived_at == now
    assert list(Reading.objects.values_list("id", flat=True)) == [ids["day2"]]
    assert other_row.id not in archived
    # The dropped readings' keys went with them, the living reading's key stayed.
    assert set(ReadingKey.objects.values_list("device_id", "seq")) == {(alerted.id, 8)}
    assert result.keys_deleted == 8
    # Never a row-by-row delete of readings: the partitions went as a whole.
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in statements if s.startswith("DELETE FROM monitoring_reading ")]
    assert any("DETACH PARTITION monitoring_reading_p20250310" in s for s in statements)
    # A second run has nothing left to do.
    again = readings_retention_apply(now=now, days=30)
    assert again.dropped == [] and again.archived == 0


@postgres_only
@pytest.mark.django_db
def test_retention_finishes_a_partition_detached_by_a_run_that_stopped(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE monitoring_reading DETACH PARTITION {partition_name(D0)}")
    _checks_done()
    result = readings_retention_apply(now=_at(D0 + timedelta(days=10), 0), days=5)
    assert result.dropped == [partition_name(D0)]
    assert not _exists(partition_name(D0)) and not ReadingKey.objects.exists()


@postgres_only
@pytest.mark.django_db
def test_retention_leaves_a_detached_day_that_is_not_past_retention(device):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE monitoring_reading DETACH PARTITION {partition_name(D0)}")
    result = readings_retention_apply(now=_at(D0 + timedelta(days=3), 0), days=5)
    assert result.dropped == [] and _exists(partition_name(D0))


@postgres_only
@pytest.mark.django_db
def test_retention_expires_old_rows_of_the_default_partition_and_keeps_newer_ones(device):
    old, recent = _at(date(2019, 5, 1), 10), _at(date(2019, 6, 20), 10)
    Alert.objects.create(
        patient_id=device.patient_id,
        kind="tachycardia",
        priority="low",
        state="resolved",
        message="m",
        raised_at=old + timedelta(minutes=5),
        resolved_at=old + timedelta(minutes=10),
    )
    kept, archived_only = readings_store(
        readings=[_reading(device, seq=1, at=recent), _reading(device, seq=2, at=old)]
    )
    result = readings_retention_apply(now=_at(date(2019, 6, 25), 0), days=30)
    assert result.default_rows_deleted == 1
    assert list(Reading.objects.values_list("id", flat=True)) == [kept.id]
    assert list(ReadingArchive.objects.values_list("id", flat=True)) == [archived_only.id]
    assert list(ReadingKey.objects.values_list("seq", flat=True)) == [1]


@postgres_only
@pytest.mark.django_db
def test_the_command_creates_partitions_and_applies_retention(device, capsys):
    readings_partitions_ensure(now=_at(D0, 0), ahead_days=0)
    readings_store(readings=[_reading(device, seq=1, at=_at(D0, 10))])
    _checks_done()
    call_command("readings_partitions", "--ahead", "9", "--retention", "--days", "60")
    out = capsys.readouterr().out
    today = datetime.now(UTC).date()
    assert f"created {partition_name(today + timedelta(days=9))}" in out
    assert f"dropped {partition_name(D0)}" in out
    assert "monitoring_reading_default  default" in out
