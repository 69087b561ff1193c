from __future__ import annotations

from django.core.mail import send_mail


def test_mail_goes_through_a_real_smtp_server(smtp_server):
    send_mail("Subject", "Body text", None, ["nurse@example.org"])
    assert len(smtp_server.to("nurse@example.org")) == 1
    assert smtp_server.messages[0]["Subject"] == "Subject"
