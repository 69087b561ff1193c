"""Role rules for people. Object visibility (other places answer 404) is done by the views'
querysets through ``accounts.selectors.user_place_ids``."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import Role, User


def _person(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


def request_person(request: Request) -> User:
    """The signed-in person of a request that a person-only permission (``IsPerson``, the
    role rules below) has already admitted."""
    user = _person(request)
    if user is None:
        raise NotAuthenticated()
    return user


class IsPerson(BasePermission):
    """Any signed-in person (not a device token)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return _person(request) is not None


class IsAdminRole(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = _person(request)
        return user is not None and user.is_admin


class ReadAnyWriteRoles(BasePermission):
    """Every person may read; only the roles in ``write_roles`` may write."""

    write_roles: frozenset[str] = frozenset({Role.ADMIN})
    message = "Your role may not change this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = _person(request)
        if user is None:
            return False
        if request.method in SAFE_METHODS:
            return True
        return user.is_admin or user.role in self.write_roles


class AdminWrites(ReadAnyWriteRoles):
    write_roles = frozenset({Role.ADMIN})


class ClinicianWrites(ReadAnyWriteRoles):
    write_roles = frozenset({Role.ADMIN, Role.DOCTOR, Role.NURSE})


class DoctorWrites(ReadAnyWriteRoles):
    """Admins and doctors write; nurses read (devices, for example)."""

    write_roles = frozenset({Role.ADMIN, Role.DOCTOR})
