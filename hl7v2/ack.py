"""Acknowledgements: ``ACK^<trigger>^ACK`` with MSA and, for a refusal or a note, ERR segments.

Built by hand from the request's MSH line, read as plain text, rather than with python-hl7's
``create_ack``: an ACK must be written for *every* frame, including the ones python-hl7
cannot take apart (a truncated MSH, unusual encoding characters), and ``create_ack`` raises on
those. The header is read field by field with the message's own separators, each missing field
is empty, and the ACK is written with the same separators, so what the sender reads back is in
its own encoding:

- MSH-3/MSH-4 ours (``HL7_SENDING_APPLICATION``/``_FACILITY``), MSH-5/MSH-6 the sender's
  MSH-3/MSH-4, MSH-9 ``ACK^<its trigger>^ACK``, MSH-11 its processing id, MSH-12 its version
  (2.6 when it named none);
- MSA-1 the code, MSA-2 its MSH-10;
- ERR-2 location, ERR-3 HL7 table 0357 code, ERR-4 severity, ERR-5 our machine code, ERR-8
  the text (escaped with the message's escape character).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hl7
from django.conf import settings
from django.utils import timezone

from hl7v2.vocabulary import (
    ACK_VERSION_DEFAULT,
    COMMIT_CODES,
    ERROR_CODE_TEXT,
    AckCode,
    Location,
    Refusal,
)

_DEFAULT_ENCODING = "^~\\&"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the listener sends back for one message."""

    ack: str
    code: str  # AA, AE or AR
    stored: int  # readings stored now (0 for a resend)
    patients: tuple[int, ...] = ()  # whose readings the message carried (for the audit)
    # For the audit record of a refusal: its code and reason, the TLS subject of the sender.
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Header:
    """What an ACK needs from the message it answers, read from its MSH line as text."""

    field_sep: str = "|"
    component_sep: str = "^"
    repetition_sep: str = "~"
    escape_char: str = "\\"
    subcomponent_sep: str = "&"
    fields: tuple[str, ...] = ()  # MSH-3 onwards, raw (still in the sender's encoding)

    def field(self, number: int) -> str:
        """MSH-<number> as sent (3 and up), "" when absent."""
        index = number - 3
        return self.fields[index] if 0 <= index < len(self.fields) else ""

    def component(self, number: int, component: int = 1) -> str:
        parts = self.field(number).split(self.repetition_sep, 1)[0].split(self.component_sep)
        return parts[component - 1].strip() if component <= len(parts) else ""

    @property
    def control_id(self) -> str:
        return self.field(10).strip()

    @property
    def version(self) -> str:
        return self.component(12)

    def commit_wanted(self, answer: str) -> bool:
        """Whether MSH-15 (accept acknowledgement type, enhanced mode) asks for a commit
        acknowledgement for this outcome: ``AL`` always, ``ER`` on an error, ``SU`` on success;
        ``NE`` or empty (original mode, PCD-01's ``NE``/``AL``): the application ACK instead."""
        kind = self.component(15).upper()
        if kind == "ER":
            return answer != AckCode.ACCEPT
        if kind == "SU":
            return answer == AckCode.ACCEPT
        return kind == "AL"

    def escape(self, text: str) -> str:
        """``text`` with the message's separators written as HL7 escape sequences."""
        e = self.escape_char
        out = text.replace(e, f"{e}E{e}")
        for char, code in (
            (self.field_sep, "F"),
            (self.component_sep, "S"),
            (self.subcomponent_sep, "T"),
            (self.repetition_sep, "R"),
        ):
            if char:
                out = out.replace(char, f"{e}{code}{e}")
        return out.replace("\r", " ").replace("\n", " ")


def header_read(text: str) -> Header:
    """The header of ``text`` (the first segment if it is an MSH), never raising: what is
    missing is empty, separators missing or clashing fall back to the standard ones."""
    first = text.replace("\r\n", "\r").replace("\n", "\r").lstrip("\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return Header()
    field_sep = first[3]
    rest = first[4:].split(field_sep)
    encoding = rest[0] if rest else ""
    chars = [*encoding[:4], *_DEFAULT_ENCODING[len(encoding[:4]) :]]
    if len({*chars, field_sep}) != 5 or field_sep.isalnum() or field_sep.isspace():
        return Header(fields=tuple(rest[1:]) if field_sep == "|" else ())
    return Header(
        field_sep=field_sep,
        component_sep=chars[0],
        repetition_sep=chars[1],
        escape_char=chars[2],
        subcomponent_sep=chars[3],
        fields=tuple(rest[1:]),
    )


def hl7_now() -> str:
    """Now as an HL7 DTM with its UTC offset."""
    return timezone.now().strftime("%Y%m%d%H%M%S+0000")


def control_id_sniff(text: str) -> str:
    """MSH-10 of a message, read from its MSH line alone ("" when there is none)."""
    return header_read(text).control_id


def ack_build(
    *,
    text: str,
    code: str = AckCode.ACCEPT,
    refusal: Refusal | None = None,
    warnings: list[Refusal] | None = None,
    note: str = "",
    commit: bool | None = None,
) -> str:
    """The ACK of the message ``text``.

    A refusal adds an ERR with severity E; each of ``warnings`` (rows not taken from a message
    otherwise accepted) an ERR with severity W at its location; a ``note`` an ERR with severity
    W and code 0. ``commit`` (default: the message asked for enhanced mode) turns AA/AE/AR
    into the commit codes CA/CE/CR.
    """
    h = header_read(text)
    f, c = h.field_sep, h.component_sep
    answer = refusal.ack_code if refusal is not None else code
    if commit if commit is not None else h.commit_wanted(answer):
        answer = COMMIT_CODES.get(answer, answer)
    trigger = h.component(9, 2)
    msh = f.join(
        [
            "MSH",
            h.component_sep + h.repetition_sep + h.escape_char + h.subcomponent_sep,
            h.escape(settings.HL7_SENDING_APPLICATION),
            h.escape(settings.HL7_SENDING_FACILITY),
            h.field(3),
            h.field(4),
            hl7_now(),
            "",
            c.join(["ACK", trigger, "ACK"]) if trigger else c.join(["ACK", "", "ACK"]),
            hl7.generate_message_control_id(),
            h.field(11) or "P",
            h.version or ACK_VERSION_DEFAULT,
        ]
    )
    segments = [msh, f.join(["MSA", answer, h.field(10)])]
    if refusal is not None:
        segments.append(_err(h, severity="E", refusal=refusal))
    for warning in warnings or []:
        segments.append(_err(h, severity="W", refusal=warning))
    if note:
        segments.append(
            f.join(["ERR", "", "", c.join(["0", "Message accepted", "HL70357"]), "W", "note"])
            + f * 3
            + h.escape(note)
        )
    return "\r".join(segments) + "\r"


def _err(h: Header, *, severity: str, refusal: Refusal) -> str:
    f, c = h.field_sep, h.component_sep
    where = _location(h, refusal.location)
    table = c.join(
        [
            refusal.hl7_error,
            ERROR_CODE_TEXT.get(refusal.hl7_error, "Message accepted"),
            "HL70357",
        ]
    )
    return (
        f.join(["ERR", "", where, table, severity, h.escape(refusal.code)])
        + f * 3
        + h.escape(refusal.message)
    )


def _location(h: Header, location: Location | None) -> str:
    if location is None:
        return ""
    return h.component_sep.join([location.segment, str(location.position), str(location.field)])
