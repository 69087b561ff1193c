"""Alert events POSTed to a place's webhook, signed with HMAC-SHA256 of the body.

Headers: ``X-Monitor-Timestamp`` (Unix seconds) and
``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the place's
webhook_secret>``. The receiver recomputes it and rejects old timestamps (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
EVENT_HEADER = "X-Monitor-Event"


class WebhookError(Exception):
    """The receiver did not accept the event (network error or non-2xx answer)."""


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_post(*, url: str, secret: str, event_id: int, payload: dict[str, Any]) -> int:
    """POST the payload; returns the HTTP status or raises WebhookError."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "patient-monitor-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
            EVENT_HEADER: str(event_id),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT) as response:
            status: int = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"webhook answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(f"webhook unreachable: {exc}") from exc
    if not 200 <= status < 300:
        raise WebhookError(f"webhook answered {status}")
    return status
