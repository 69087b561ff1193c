"""Credential and password reset e-mails: real SMTP (aiosmtpd), eager Celery, real Redis."""

from __future__ import annotations

import logging
import smtplib
from unittest import mock

import pytest
from celery import Task

from accounts import emails, otp, services, tasks
from accounts.models import User
from accounts.tests.mail import body, one_time_password, reset_code
from testing.auth_cache import auth_cache_clear
from testing.factories import UserFactory

pytestmark = pytest.mark.django_db


def _attempts(task: Task) -> int:
    """How often a task runs before it gives up: once, then each retry."""
    assert task.max_retries is not None, "retries for ever"
    return task.max_retries + 1


@pytest.fixture(autouse=True)
def _clean_cache():
    """One-time codes live in Redis and outlive the database rollback."""
    auth_cache_clear()
    yield
    auth_cache_clear()


@pytest.fixture
def invited(django_capture_on_commit_callbacks):
    """A user an administrator just created; the credentials task has not run yet."""
    with django_capture_on_commit_callbacks(execute=False):
        return services.user_create(email="invited@example.org", first_name="Anu")


def our_logs(caplog) -> str:
    """Everything logged, except by the test SMTP server itself (aiosmtpd logs the DATA)."""
    return "\n".join(
        f"{r.getMessage()} {r.args!r}" for r in caplog.records if not r.name.startswith("mail.log")
    )


@pytest.fixture
def eager_retries(celery_eager):
    """Eager tasks that go through their retries (a propagated Retry would stop them)."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield  # celery_eager restores the setting


def refuse_first(smtp_server, times: int):
    """Make the SMTP server refuse the first ``times`` messages with a temporary error."""
    calls = {"n": 0}
    accept = smtp_server.handle_DATA

    async def handle_DATA(server, session, envelope):
        calls["n"] += 1
        if calls["n"] <= times:
            return "451 Try again later"
        return await accept(server, session, envelope)

    smtp_server.handle_DATA = handle_DATA
    return calls


# --- Credentials ----------------------------------------------------------------------------


def test_credentials_task_is_queued_after_commit_with_only_the_user_id(
    django_capture_on_commit_callbacks, smtp_server
):
    with mock.patch.object(tasks.send_credentials_email, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            user = services.user_create(email="later@example.org")
        assert len(callbacks) == 1
        delay.assert_not_called()  # nothing is queued before the transaction commits
        callbacks[0]()
    delay.assert_called_once_with(user.pk)
    assert smtp_server.messages == []


def test_credentials_email_carries_a_working_one_time_password(
    invited, smtp_server, celery_eager, client
):
    assert tasks.send_credentials_email.delay(invited.pk).get() is True
    (message,) = smtp_server.to("invited@example.org")
    assert message["Subject"] == "Your Patient Monitor account"
    text = body(message)
    assert "Hello Anu," in text and "invited@example.org" in text
    password = one_time_password(message)
    invited.refresh_from_db()
    assert invited.check_password(password)
    assert password not in invited.password  # stored hashed
    assert invited.must_change_password is True


def test_credentials_task_is_idempotent(invited, smtp_server, celery_eager):
    tasks.send_credentials_email.delay(invited.pk)
    invited.refresh_from_db()
    stored = invited.password
    # A duplicate delivery of the task neither mails again nor changes the password.
    assert tasks.send_credentials_email.delay(invited.pk).get() is False
    invited.refresh_from_db()
    assert invited.password == stored
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("change", [{"is_active": False}, {"must_change_password": False}])
def test_credentials_task_skips_users_who_no_longer_need_them(
    invited, smtp_server, celery_eager, change
):
    User.objects.filter(pk=invited.pk).update(**change)
    assert tasks.send_credentials_email.delay(invited.pk).get() is False
    assert tasks.send_credentials_email.delay(987654).get() is False  # deleted user
    assert smtp_server.messages == []


def test_credentials_task_retries_when_the_mail_server_refuses(invited, smtp_server, eager_retries):
    calls = refuse_first(smtp_server, times=2)
    assert tasks.send_credentials_email.delay(invited.pk).get() is True
    assert calls["n"] == 3
    (message,) = smtp_server.messages
    invited.refresh_from_db()
    assert invited.check_password(one_time_password(message))


def test_credentials_task_gives_up_without_storing_an_undelivered_password(
    invited, smtp_server, eager_retries
):
    calls = refuse_first(smtp_server, times=1000)
    with pytest.raises(smtplib.SMTPDataError, match="451"):
        tasks.send_credentials_email.delay(invited.pk).get()
    assert calls["n"] == _attempts(tasks.send_credentials_email)
    invited.refresh_from_db()
    assert not invited.has_usable_password()


def test_credentials_task_retries_when_the_mail_server_is_down(invited, eager_retries, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    with (
        mock.patch.object(emails, "credentials_email", wraps=emails.credentials_email) as render,
        pytest.raises(OSError),
    ):
        tasks.send_credentials_email.delay(invited.pk).get()
    assert render.call_count == _attempts(tasks.send_credentials_email)


def test_the_retry_policy(invited):
    task = tasks.send_credentials_email
    # Set by shared_task from MAIL_RETRY; celery-types' Task does not declare these options.
    autoretry_for = task.autoretry_for  # type: ignore[attr-defined]  # see above
    retry_backoff = task.retry_backoff  # type: ignore[attr-defined]  # see above
    assert set(autoretry_for) >= {OSError}
    assert any(
        issubclass(exc, Exception) and exc.__name__ == "SMTPException" for exc in autoretry_for
    )
    assert retry_backoff and _attempts(task) >= 4


def test_the_one_time_password_never_reaches_the_logs(invited, smtp_server, celery_eager, caplog):
    caplog.set_level(logging.DEBUG)
    tasks.send_credentials_email.delay(invited.pk)
    password = one_time_password(smtp_server.messages[0])
    assert f"user {invited.pk}" in our_logs(caplog)
    assert password not in our_logs(caplog)


def test_reissue_sends_a_new_password_and_ends_sessions(
    invited, admin_user, smtp_server, celery_eager, django_capture_on_commit_callbacks, api
):
    tasks.send_credentials_email.delay(invited.pk)
    first = one_time_password(smtp_server.messages[0])
    tokens = api.post("/api/auth/login/", {"email": invited.email, "password": first}).json()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_credentials_reissue(user=invited, actor=admin_user)
    second = one_time_password(smtp_server.messages[1])
    invited.refresh_from_db()
    assert invited.check_password(second) and not invited.check_password(first)
    assert api.post("/api/auth/refresh/", {"refresh": tokens["refresh"]}).status_code == 401


# --- Password reset codes -------------------------------------------------------------------


def test_reset_code_email(smtp_server, celery_eager, settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.OTP_TTL_SECONDS = 600
    user = UserFactory(email="reset@example.org", first_name="Ritu")
    assert tasks.send_password_reset_email.delay(user.pk).get() is True
    (message,) = smtp_server.to(user.email)
    text = body(message)
    assert "Hello Ritu," in text and "10 minutes" in text
    code = reset_code(message)
    assert code not in our_logs(caplog)
    otp.otp_verify(purpose=services.PASSWORD_RESET, user_id=user.pk, code=code)


def test_reset_code_task_skips_inactive_and_missing_users(smtp_server, celery_eager):
    user = UserFactory(is_active=False)
    assert tasks.send_password_reset_email.delay(user.pk).get() is False
    assert tasks.send_password_reset_email.delay(987654).get() is False
    assert smtp_server.messages == []


def test_reset_code_task_retries_and_only_the_delivered_code_works(smtp_server, eager_retries):
    user = UserFactory(email="retry@example.org")
    calls = refuse_first(smtp_server, times=1)
    tasks.send_password_reset_email.delay(user.pk)
    assert calls["n"] == 2
    code = reset_code(smtp_server.messages[0])
    otp.otp_verify(purpose=services.PASSWORD_RESET, user_id=user.pk, code=code)
