"""Small assertions shared by the REST tests of this app."""

from __future__ import annotations

from rest_framework.test import APIClient


def device_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}")
    return client
