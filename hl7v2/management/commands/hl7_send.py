"""``manage.py hl7_send FILE|- [--host H] [--port P]``: send HL7 messages over MLLP and print
each ACK.

The file holds one or more messages, each beginning with its MSH segment; segments end with CR
or a newline. All messages go on one connection, pipelined; the ACKs are printed in order (one
per line, segments separated by `` | `` unless ``--raw``). The exit status is 1 if any message
was not accepted (AE or AR).
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hl7v2.mllp import mllp_exchange


def messages_split(text: str) -> list[str]:
    """The messages in ``text``: each starts at an MSH at the start of a line."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    parts = re.split(r"\r(?=MSH\|)", text.strip("\r\x0b\x1c"))
    return [part.strip("\r") + "\r" for part in parts if part.strip()]


class Command(BaseCommand):
    help = "Send HL7 messages from a file (or - for standard input) over MLLP; print the ACKs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a file of HL7 messages, or - for standard input")
        parser.add_argument("--host", default=settings.HL7_MLLP_HOST)
        parser.add_argument("--port", type=int, default=settings.HL7_MLLP_PORT)
        parser.add_argument("--timeout", type=float, default=10.0)
        parser.add_argument("--raw", action="store_true", help="print ACKs with CR separators")

    def handle(
        self, *args: Any, file: str, host: str, port: int, timeout: float, raw: bool, **_: Any
    ) -> None:
        if file == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc}") from exc
        messages = messages_split(text)
        if not messages:
            raise CommandError("no HL7 message (a segment beginning with MSH|) in the input")
        try:
            acks = asyncio.run(mllp_exchange(host, port, messages, wait=timeout))
        except (OSError, TimeoutError) as exc:
            raise CommandError(f"MLLP exchange with {host}:{port} failed: {exc!r}") from exc
        refused = 0
        for ack in acks:
            self.stdout.write(ack if raw else " | ".join(s for s in ack.split("\r") if s))
            if "\rMSA|AA|" not in ack:
                refused += 1
        if refused:
            self.stderr.write(f"{refused} of {len(acks)} message(s) not accepted")
            sys.exit(1)
