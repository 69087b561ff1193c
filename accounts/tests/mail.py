"""Reading the e-mails the tests' SMTP server received."""

from __future__ import annotations

import re
from email.message import Message


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def reset_code(message: Message) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", body(message), re.MULTILINE)
    assert match, body(message)
    return match.group(1)


def one_time_password(message: Message) -> str:
    match = re.search(r"One-time password:\s+(\S+)", body(message))
    assert match, body(message)
    return match.group(1)
