"""Helpers every app's services use: partial updates and saving with a 409 on a lost race."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction

from common.errors import ApplicationError, Conflict, ValidationFailed

M = TypeVar("M", bound=models.Model)


def model_assign(
    instance: models.Model, *, fields: Iterable[str], data: Mapping[str, Any]
) -> list[str]:
    """Copy the given fields from ``data`` onto ``instance``; return the names that changed."""
    changed = []
    for name in fields:
        if name in data and getattr(instance, name) != data[name]:
            setattr(instance, name, data[name])
            changed.append(name)
    return changed


def model_clean(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Field-level checks of the model (lengths, choices, URLs) as one ``ValidationFailed``.

    Uniqueness is checked by the services themselves (a 409), foreign keys arrive as objects."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except DjangoValidationError as exc:
        raise ValidationFailed("The request is not valid.", details=exc.message_dict) from exc


def model_save(
    instance: M,
    *,
    update_fields: list[str] | None = None,
    conflict: Callable[[M], ApplicationError | None] | None = None,
) -> M:
    """Save in a savepoint, turning a lost race on a unique constraint into a 409.

    ``conflict`` may name the exact conflict (re-running the service's own checks); without
    it, or when it finds none, the answer is a generic 409 ``conflict``."""
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError as exc:
        error = conflict(instance) if conflict is not None else None
        raise (error or Conflict("This conflicts with an existing record.")) from exc
    return instance


def model_update(
    instance: M,
    *,
    fields: Iterable[str],
    data: Mapping[str, Any],
    validate: Callable[[M, list[str]], None] | None = None,
) -> tuple[M, list[str]]:
    """Apply a partial update: assign the given fields, validate, save only what changed.

    Returns the instance and the names of the fields that changed (none: nothing saved)."""
    changed = model_assign(instance, fields=fields, data=data)
    if changed:
        if validate is not None:
            validate(instance, changed)
        model_save(instance, update_fields=changed)
    return instance, changed
