"""Validators of what people type, shared by every entry point (REST serializers and admin
forms through the model fields, HL7 ADT through :func:`control_characters_check`), and the
one way outgoing formats neutralise control characters that older data may still hold.

A name, ward, bed or MRN is one line of printable text: a carriage return or line feed in it
would split an HL7 segment, an e-mail header or a log line, and no person's name holds one.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# C0 controls (tab included: it is no part of a name either), DEL and the C1 controls,
# and the Unicode line and paragraph separators.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_characters_find(value: str) -> str | None:
    """The first control character of ``value``, or None."""
    found = CONTROL_CHARACTERS.search(value)
    return found.group() if found else None


def control_characters_replace(value: str, replacement: str = " ") -> str:
    """``value`` with each control character replaced (for outgoing text built from data
    stored before the validators existed)."""
    return CONTROL_CHARACTERS.sub(replacement, value)


@deconstructible
class NoControlCharactersValidator:
    """Refuses text holding a control character (a line break, a tab, an escape...)."""

    message = "Must not contain control characters (line breaks, tabs and the like)."
    code = "control_characters"

    def __call__(self, value: object) -> None:
        if isinstance(value, str) and control_characters_find(value) is not None:
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharactersValidator)

    def __hash__(self) -> int:
        return hash(self.code)


no_control_characters = NoControlCharactersValidator()
