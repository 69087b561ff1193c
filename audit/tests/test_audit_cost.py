"""What the audit costs a REST change on the hot path: a reading posted over REST is one more
INSERT (its record, in the change's own transaction) and no savepoint of the view's own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from testing.clients import device_client

# Not wrapped in a test transaction: the request's own transactions are what is counted.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reading_posted_costs_one_insert_and_no_savepoint_of_the_view(device):
    client = device_client(device.token)
    reading = {"metric": "heart_rate", "bpm": 80, "recorded_at": timezone.now().isoformat()}
    with CaptureQueriesContext(connection) as post:
        response = client.post("/api/records/", {**reading, "seq": 1}, format="json")
    assert response.status_code == 201, response.content
    statements = [query["sql"] for query in post.captured_queries]
    assert sum(s.startswith('INSERT INTO "audit_auditrecord"') for s in statements) == 1
    # The one savepoint is the readings store's own (retried by halves on a refused row).
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 1, statements
