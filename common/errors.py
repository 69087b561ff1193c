"""The one error family that services raise, rendered into the contract's error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

# {field: [messages]}; for a list payload, that per item: {"0": {field: [messages]}}.
ErrorDetails: TypeAlias = Mapping[str, Any]


class ApplicationError(Exception):
    """A failure the caller can understand: a machine code, a message for people, details."""

    status = 400
    code = "invalid"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        """A subclass names its HTTP status and machine code in its bases:
        ``class NotFound(ApplicationError, status=404, code="not_found")``."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: ErrorDetails | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class ValidationFailed(ApplicationError, status=400, code="validation_error"): ...


class NotAuthenticated(ApplicationError, status=401, code="not_authenticated"): ...


class PermissionDenied(ApplicationError, status=403, code="forbidden"): ...


class NotFound(ApplicationError, status=404, code="not_found"): ...


class Conflict(ApplicationError, status=409, code="conflict"): ...


def error_body(code: str, message: str, details: ErrorDetails | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}
