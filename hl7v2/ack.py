"""Acknowledgements (original mode): ``ACK^<trigger>^ACK`` with MSA and, for a refusal or a
note, an ERR segment. Built with python-hl7's ``create_ack``, so separators and escapes follow
the message being answered."""

from __future__ import annotations

import hl7
from django.conf import settings
from django.utils import timezone

from hl7v2.vocabulary import ACK_VERSION_DEFAULT, ERROR_CODE_TEXT, AckCode, Location, Refusal


def hl7_now() -> str:
    """Now as an HL7 DTM with its UTC offset."""
    return timezone.now().strftime("%Y%m%d%H%M%S+0000")


def _stand_in(control_id: str) -> hl7.Message:
    """The MSH of a message that could not be read, to answer it all the same."""
    return hl7.parse(f"MSH|^~\\&|||||||ORU^R01|{control_id}|P|{ACK_VERSION_DEFAULT}")


def control_id_sniff(text: str) -> str:
    """MSH-10 of an unreadable message if its MSH segment can still be read, else ""."""
    first = text.replace("\n", "\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        return ""
    try:
        msh = hl7.parse(first).segment("MSH")
        return str(msh.extract_field(field_num=10)).strip()
    except (hl7.ParseException, ValueError, IndexError, KeyError):
        return ""


def ack_build(
    *,
    request: hl7.Message | None,
    code: str = AckCode.ACCEPT,
    refusal: Refusal | None = None,
    note: str = "",
    control_id: str = "",
) -> str:
    """The ACK of ``request`` (or of an unreadable message whose MSH-10 was ``control_id``).

    A refusal adds an ERR with severity E (its table 0357 code, our machine code in ERR-5 and
    its text in ERR-8); a ``note`` on an accepted message adds an ERR with severity W.
    """
    source = request if request is not None else _stand_in(control_id)
    ack = source.create_ack(
        refusal.ack_code if refusal is not None else code,
        message_id=hl7.generate_message_control_id(),
        application=settings.HL7_SENDING_APPLICATION,
        facility=settings.HL7_SENDING_FACILITY,
    )
    msh = ack.segment("MSH")
    msh.assign_field(hl7_now(), 7)
    if not str(msh(12)):
        msh.assign_field(ACK_VERSION_DEFAULT, 12)
    if refusal is not None:
        ack.append(
            _err(
                ack,
                severity="E",
                hl7_error=refusal.hl7_error,
                app_code=refusal.code,
                text=refusal.message,
                location=refusal.location,
            )
        )
    elif note:
        ack.append(_err(ack, severity="W", hl7_error="0", app_code="note", text=note))
    return str(ack)


def _err(
    ack: hl7.Message,
    *,
    severity: str,
    hl7_error: str,
    app_code: str,
    text: str,
    location: Location | None = None,
) -> hl7.Segment:
    err = ack.create_segment([ack.create_field(["ERR"])])
    if location is not None:
        err.assign_field(location.segment, 2, 1, 1)
        err.assign_field(str(location.position), 2, 1, 2)
        err.assign_field(str(location.field), 2, 1, 3)
    err.assign_field(hl7_error, 3, 1, 1)
    err.assign_field(ERROR_CODE_TEXT.get(hl7_error, "Message accepted"), 3, 1, 2)
    err.assign_field("HL70357", 3, 1, 3)
    err.assign_field(severity, 4)
    err.assign_field(app_code, 5, 1, 1)
    err.assign_field(ack.escape(text), 8)
    return err
