"""``Authorization: Device <token>`` for bedside monitors posting readings over REST.

A device is not a person. A successful device authentication sets ``request.auth`` to the
Device and ``request.user`` to a :class:`DevicePrincipal`, an *unauthenticated* stand-in
(``is_authenticated`` is False, it is no ``accounts.User``). So the device token can only
do what a view explicitly allows through :class:`IsDevice`, which is posting readings:

- every other view authenticates with JWT only, so a ``Device`` header is not even read
  there and the request is anonymous (401);
- a view that did list this class but requires a person (``IsAuthenticated``,
  ``accounts.permissions.IsPerson`` and its subclasses) still refuses it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from clinical.models import Device
from clinical.selectors import device_by_token

KEYWORD = "Device"


class DevicePrincipal(AnonymousUser):
    """``request.user`` for a device: carries the device, grants nothing a person has."""

    def __init__(self, device: Device) -> None:
        super().__init__()
        self.device = device

    def __str__(self) -> str:
        return f"device {self.device.serial}"


class DeviceTokenAuthentication(BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request: Request) -> tuple[DevicePrincipal, Device] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() != self.keyword.lower():
            return None  # Not ours: another scheme (Bearer) or anonymous.
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                {"detail": "Use 'Authorization: Device <token>'.", "code": "invalid_token"}
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            token = ""
        device = device_by_token(token)
        if device is None:
            raise exceptions.AuthenticationFailed(
                {"detail": "Unknown device token.", "code": "invalid_token"}
            )
        return DevicePrincipal(device), device

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class IsDevice(BasePermission):
    """The request carries a valid device token (active or not: the service decides)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, Device) and isinstance(request.user, DevicePrincipal)


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.authentication.DeviceTokenAuthentication"
    name = "DeviceToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A device token issued when the device was registered or its token "
            "rotated, sent as `Authorization: Device <token>`. Only POST /api/records/ accepts it.",
        }
