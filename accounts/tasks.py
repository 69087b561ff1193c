"""Celery tasks of accounts: the e-mails that carry a one-time password or a reset code.

Tasks take ids, load, call a service; they retry with backoff on mail-server and network
errors and are queued after commit. The task names are kept from earlier releases, so tasks
queued before an upgrade still run.
"""

from __future__ import annotations

import smtplib

from celery import shared_task

from accounts.emails import user_credentials_send, user_reset_code_send
from common.tasks import RetryPolicy

# Retry policy for anything that talks to the mail server: SMTP refusals and network errors.
MAIL_RETRY: RetryPolicy = {
    "autoretry_for": (smtplib.SMTPException, OSError),
    "retry_backoff": 5,
    # Within the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT in config/settings.py).
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}


@shared_task(name="notifications.send_credentials_email", **MAIL_RETRY)
def send_credentials_email(user_id: int) -> bool:
    """E-mail a new account its login and a one-time password (made by the service, so the
    password never appears in task arguments or logs)."""
    return user_credentials_send(user_id=user_id)


@shared_task(name="notifications.send_password_reset_email", **MAIL_RETRY)
def send_password_reset_email(user_id: int) -> bool:
    """E-mail a password reset code (made by the service, replacing any earlier code)."""
    return user_reset_code_send(user_id=user_id)
