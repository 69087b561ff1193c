"""The database refuses to change or delete audit records (PostgreSQL), and the purge removes
only what is older than the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditRecord
from audit.partitions import audit_partitions_ensure, audit_purge, postgres_partitioned
from audit.services import SYSTEM, audit_record

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigger and partitions are PostgreSQL's"
)


def make(at=None):
    return audit_record(actor=SYSTEM, action="read", outcome="success", channel="system", at=at)


@postgres_only
def test_update_and_delete_are_refused_by_the_database():
    made = make()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=made.pk).update(action="delete")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=made.pk).delete()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditrecord SET outcome = 'error'")
    assert AuditRecord.objects.get().action == "read"


@postgres_only
def test_table_is_partitioned_by_month():
    assert postgres_partitioned()
    now = timezone.now()
    make(at=now)
    make(at=now - timedelta(days=800))  # no month partition: the default one holds it
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_auditrecord ORDER BY at DESC")
        tables = [row[0] for row in cursor.fetchall()]
    assert tables == [f"audit_auditrecord_p{now:%Y%m}", "audit_auditrecord_default"]


def test_purge_removes_only_records_older_than_the_retention():
    now = timezone.now()
    kept = [make(at=now), make(at=now - timedelta(days=399))]
    make(at=now - timedelta(days=401))
    make(at=now - timedelta(days=900))
    result = audit_purge(now=now)
    assert result.deleted == 2
    assert sorted(AuditRecord.objects.values_list("id", flat=True)) == sorted(r.id for r in kept)


@postgres_only
def test_purge_drops_whole_old_month_partitions():
    now = timezone.now()
    old_month = now - timedelta(days=500)
    audit_partitions_ensure(now=old_month, ahead_months=0)
    make(at=old_month)
    kept = make(at=now)
    result = audit_purge(now=now)
    assert result.dropped == [f"audit_auditrecord_p{old_month:%Y%m}"]
    assert result.deleted == 1
    assert list(AuditRecord.objects.values_list("id", flat=True)) == [kept.id]


def test_retention_is_never_below_a_year(settings):
    with pytest.raises(ImproperlyConfigured):
        audit_purge(days=300)
    settings.AUDIT_RETENTION_DAYS = 100
    with pytest.raises(Exception, match="at least 365"):
        call_command("audit_purge")
