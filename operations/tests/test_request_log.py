"""Request ids and the access line of each HTTP request."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from common.logs import ContextFilter


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_log() -> Iterator[Collect]:
    handler = Collect()
    logger = logging.getLogger("access")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_request_without_an_id_gets_a_new_one(client, access_log):
    response = client.get("/healthz")
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    (line,) = access_log.records
    assert line.request_id == request_id
    assert line.status == 200 and line.method == "GET" and line.path == "/healthz"
    assert line.getMessage().startswith("GET /healthz 200 ")


def test_a_sane_given_id_is_kept_and_an_unsafe_one_replaced(client, access_log):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a.2")["X-Request-ID"] == "lb-7f3a.2"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\r\nSet-Cookie: x")
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])
    assert [r.request_id for r in access_log.records] == [
        "lb-7f3a.2",
        replaced["X-Request-ID"],
    ]


@pytest.mark.django_db
def test_an_error_response_is_logged_with_its_status(client, access_log):
    response = client.get("/api/patients/")
    assert response.status_code == 401
    assert access_log.records[-1].status == 401
