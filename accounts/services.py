"""Writes for people: registration, admin-created accounts, login, logout, passwords."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import mfa, otp, sessions
from accounts.emails import PASSWORD_RESET
from accounts.lockout import LOCKED_MESSAGE
from accounts.models import Role, User
from accounts.signals import user_sessions_ended
from accounts.tasks import send_credentials_email, send_password_reset_email
from audit.models import Action, Channel, Outcome
from audit.services import actor_for, audit_record, origin_for_request, user_actor
from common.errors import (
    ApplicationError,
    Conflict,
    NotAuthenticated,
    PermissionDenied,
    ValidationFailed,
)

logger = logging.getLogger(__name__)


class LoginLocked(ApplicationError, status=429, code="throttled"): ...


def email_normalize(email: str) -> str:
    return User.objects.normalize_email(email.strip()).lower()


def _email_taken(email: str) -> Conflict:
    return Conflict(
        "A user with this e-mail already exists.",
        code="email_taken",
        details={"email": ["A user with this e-mail already exists."]},
    )


def _password_check(password: str, *, user: User, field: str) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "The password is too weak.", code="weak_password", details={field: exc.messages}
        ) from None


def _user_insert(user: User) -> None:
    if User.objects.filter(email__iexact=user.email).exists():
        raise _email_taken(user.email)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # a parallel request took the address between check and insert
        raise _email_taken(user.email) from None


# --- Accounts -------------------------------------------------------------------------------


def user_register(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Self-registration: a nurse with no places, so no clinical access until an admin
    grants one."""
    user = User(
        email=email_normalize(email),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        role=Role.NURSE,
    )
    _password_check(password, user=user, field="password")
    user.set_password(password)
    _user_insert(user)
    logger.info("user %s registered", user.pk)
    return user


@transaction.atomic
def user_create(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    role: str = Role.NURSE,
    places: Iterable[Any] = (),
    is_active: bool = True,
) -> User:
    """An administrator adds a person. They get their login and a one-time password by
    e-mail (after commit) and must change it at first login."""
    user = User(
        email=email_normalize(email),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        role=role,
        is_active=is_active,
        must_change_password=True,
    )
    user.set_unusable_password()
    _user_insert(user)
    user.places.set(places)
    user_credentials_queue(user=user)
    return user


def user_credentials_queue(*, user: User) -> None:
    transaction.on_commit(partial(send_credentials_email.delay, user.pk))


@transaction.atomic
def user_credentials_reissue(*, user: User, actor: User) -> None:
    """Replace the password with a new one-time password e-mailed to the user.

    Not for a superuser (an administrator could lock the installation's owner out) nor for
    oneself (that would end one's own sessions; change the password instead)."""
    if user.pk == actor.pk:
        raise PermissionDenied(
            "You cannot reissue your own one-time password; change your password instead.",
            code="cannot_reissue_self",
        )
    if user.is_superuser:
        raise PermissionDenied(
            "A superuser's password cannot be reissued by an administrator.",
            code="cannot_reissue_superuser",
        )
    if not user.is_active:
        raise Conflict("The user is inactive; activate them first.", code="user_inactive")
    user.set_unusable_password()
    user.must_change_password = True
    user.save(update_fields=["password", "must_change_password"])
    user_sessions_end(user=user)
    user_credentials_queue(user=user)


@transaction.atomic
def user_update(
    *,
    user: User,
    actor: User,
    first_name: str | None = None,
    last_name: str | None = None,
    role: str | None = None,
    places: Iterable[Any] | None = None,
    is_active: bool | None = None,
) -> User:
    """An administrator changes a person's names, role, places or active flag."""
    if user.pk == actor.pk and (
        (role is not None and role != Role.ADMIN and not user.is_superuser) or is_active is False
    ):
        raise PermissionDenied(
            "You cannot remove your own administrator role or deactivate yourself.",
            code="cannot_demote_self",
        )
    activated = is_active is True and not user.is_active
    role_changed = role is not None and role != user.role
    old_places = set(user.places.values_list("pk", flat=True)) if places is not None else set()
    fields = []
    for name, value in (
        ("first_name", first_name),
        ("last_name", last_name),
        ("role", role),
        ("is_active", is_active),
    ):
        if value is not None:
            setattr(user, name, value.strip() if isinstance(value, str) else value)
            fields.append(name)
    if fields:
        user.save(update_fields=fields)
    places_removed = False
    if places is not None:
        user.places.set(places)
        places_removed = bool(old_places - set(user.places.values_list("pk", flat=True)))
    if is_active is False or role_changed or places_removed:
        # Deactivated, or access changed under them: every session ends (the person logs in
        # again with what they now have); refresh tokens stay dead after a reactivation.
        user_sessions_end(user=user)
    if activated and user.must_change_password and not user.has_usable_password():
        # Created inactive, so the credentials e-mail was skipped: send it now.
        user_credentials_queue(user=user)
    return user


def user_dashboards_close(*, user: User, session_id: str | None = None) -> None:
    """After commit, announce that the person's sessions (or only the login session
    ``session_id``) ended: the live channels close those open dashboard connections (4401)
    at once."""
    user_id = user.pk
    transaction.on_commit(
        lambda: user_sessions_ended.send_robust(sender=User, user_id=user_id, session_id=session_id)
    )


def user_profile_update(
    *, user: User, first_name: str | None = None, last_name: str | None = None
) -> User:
    """A person changes their own names."""
    fields = []
    if first_name is not None:
        user.first_name = first_name.strip()
        fields.append("first_name")
    if last_name is not None:
        user.last_name = last_name.strip()
        fields.append("last_name")
    if fields:
        user.save(update_fields=fields)
    return user


# --- Sessions (JWT) -------------------------------------------------------------------------


def _audit(
    request: HttpRequest | None,
    *,
    action: str,
    outcome: str = Outcome.SUCCESS,
    user: User | None = None,
    email: str = "",
    detail: dict[str, Any] | None = None,
    resource: User | None = None,
) -> None:
    """One audit record of an account event (login, logout, password, second factor)."""
    actor = actor_for(user) or user_actor(user_id=user.pk if user else None, label=email)
    subject = resource or user
    audit_record(
        actor=actor,
        action=action,
        outcome=outcome,
        channel=Channel.REST,
        origin=origin_for_request(request) if request is not None else None,
        resource_type="user" if subject is not None else "",
        resource_id=subject.pk if subject is not None else None,
        detail=detail,
    )


def _login_refused(
    request: HttpRequest | None, reason: str, *, user: User | None = None, email: str = ""
) -> None:
    """One audit record of a refused login, naming its reason."""
    _audit(
        request,
        action=Action.LOGIN_FAILED,
        outcome=Outcome.REFUSED,
        user=user,
        email=email,
        detail={"reason": reason},
    )


def user_login(
    *, email: str, password: str, otp: str | None = None, request: HttpRequest | None = None
) -> tuple[User, RefreshToken]:
    email = email_normalize(email)
    user = authenticate(request, email=email, password=password)
    if user is None and getattr(request, "axes_locked_out", False):
        # django-axes refused this account from this client (too many failures), whatever the
        # password; the lockout middleware answers 429 with Retry-After.
        _login_refused(request, "locked_out", email=email)
        raise LoginLocked(LOCKED_MESSAGE)
    if user is None:
        # Say "disabled" only to someone who knows the password; everyone else hears the
        # same message whether or not the address exists.
        disabled = User.objects.filter(email__iexact=email, is_active=False)
        candidate = disabled.first()
        if candidate is not None and candidate.check_password(password):
            _login_refused(request, "account_disabled", user=candidate)
            raise NotAuthenticated("This account is disabled.", code="account_disabled")
        _login_refused(request, "invalid_credentials", email=email)
        raise NotAuthenticated("E-mail or password is incorrect.", code="invalid_credentials")
    assert isinstance(user, User)
    if mfa.mfa_enabled(user):
        if not otp:
            raise NotAuthenticated(
                "Enter the code of your authenticator app (or a recovery code).",
                code="otp_required",
            )
        if not mfa.mfa_verify(user=user, code=otp):
            user_otp_failed(user=user, request=request)
            raise NotAuthenticated("The code is not valid.", code="otp_invalid")
    elif mfa.mfa_required(user):
        raise mfa.EnrollmentRequired(mfa.mfa_enrollment_start(user=user))
    return user, user_login_complete(user=user, request=request)


def user_otp_failed(*, user: User, request: HttpRequest | None) -> None:
    """A wrong second-factor code counts as a failed login towards the lockout."""
    _login_refused(request, "otp_invalid", user=user)
    if request is not None:
        user_login_failed.send(sender=User, credentials={"email": user.email}, request=request)
        if getattr(request, "axes_locked_out", False):
            raise LoginLocked(LOCKED_MESSAGE)


def user_login_complete(*, user: User, request: HttpRequest | None) -> RefreshToken:
    refresh = sessions.session_tokens_issue(user=user)
    if request is not None:
        # Announced as Django's own login is: django-axes clears the account's failures and
        # django.contrib.auth updates last_login.
        user_logged_in.send(sender=User, request=request, user=user)
    elif settings.SIMPLE_JWT.get("UPDATE_LAST_LOGIN"):
        update_last_login(User, user)
    _audit(request, action=Action.LOGIN, user=user)
    return refresh


def user_otp_confirm(
    *, token: str, otp: str, request: HttpRequest | None = None
) -> tuple[User, RefreshToken, list[str]]:
    """Confirm a second-factor enrolment with its first code: tokens and recovery codes."""
    user = mfa.mfa_enrollment_user(token)
    try:
        user, codes = mfa.mfa_enrollment_confirm(token=token, code=otp)
    except NotAuthenticated:
        user_otp_failed(user=user, request=request)
        raise
    _audit(request, action=Action.OTP_ENROLLED, user=user)
    return user, user_login_complete(user=user, request=request), codes


def user_otp_enroll(*, user: User) -> mfa.Enrollment:
    """A person of any role adds a second factor (confirmed by ``user_otp_confirm``)."""
    return mfa.mfa_enrollment_start(user=user)


@transaction.atomic
def user_otp_reset(*, user: User, actor: User) -> None:
    """Another administrator removes a person's second factor (a lost phone); a person whose
    role requires one enrols again at their next login."""
    if user.pk == actor.pk:
        raise PermissionDenied(
            "Another administrator must reset your second factor; or log in with a recovery code.",
            code="cannot_reset_self",
        )
    mfa.mfa_remove(user=user)  # recorded as otp_reset by the audit middleware


def _user_id(claims: dict[str, Any]) -> int:
    value = claims.get(jwt_settings.USER_ID_CLAIM)
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 0


def user_token_refresh(*, refresh: str) -> dict[str, str]:
    """A new access token and, with rotation on, a new refresh token (the old one is
    blacklisted). A token of an ended session (logout, log out everywhere, password change)
    is refused."""
    try:
        claims = RefreshToken(refresh).payload  # type: ignore[arg-type]  # encoded token is a str
    except TokenError as exc:
        raise NotAuthenticated(str(exc), code="token_not_valid") from None
    owner = User.objects.filter(pk=_user_id(claims)).first()
    if owner is not None and not sessions.token_current(claims, owner):
        raise NotAuthenticated("This session has ended; log in again.", code="token_not_valid")
    if owner is not None and mfa.mfa_required(owner) and not mfa.mfa_enabled(owner):
        # A second factor became required (a place of theirs asks it of its doctors): no
        # new token from a password's session; signing in again starts the enrolment.
        raise NotAuthenticated(
            "A second factor is now required of you: sign in again to set it up.",
            code="otp_enrollment_required",
        )
    serializer = TokenRefreshSerializer(data={"refresh": refresh})
    try:
        serializer.is_valid(raise_exception=True)
    except TokenError as exc:
        raise NotAuthenticated(str(exc), code="token_not_valid") from None
    except AuthenticationFailed:  # the account was deactivated after the token was issued
        raise NotAuthenticated("This account is disabled.", code="account_disabled") from None
    except User.DoesNotExist:
        raise NotAuthenticated(
            "The account of this token no longer exists.", code="token_not_valid"
        ) from None
    return dict(serializer.validated_data)


def user_logout(*, refresh: str, request: HttpRequest | None = None) -> None:
    """The refresh token and every access token of its session stop working."""
    try:
        # simplejwt annotates the encoded token as a Token object; it is the JWT string.
        token = RefreshToken(refresh)  # type: ignore[arg-type]  # encoded token is a str
        token.blacklist()
    except TokenError as exc:
        raise NotAuthenticated(str(exc), code="token_not_valid") from None
    sessions.session_end(claims=token.payload)
    user = User.objects.filter(pk=_user_id(token.payload)).first()
    session_id = token.payload.get(sessions.SESSION_CLAIM)
    if user is not None and session_id:
        # The session's open dashboards close (4401) as at a log out everywhere.
        user_dashboards_close(user=user, session_id=str(session_id))
    _audit(request, action=Action.LOGOUT, user=user)


def user_logout_all(*, user: User, request: HttpRequest | None = None) -> None:
    """Log out everywhere: every refresh and access token of the person stops working and
    their open dashboards close (4401)."""
    user_sessions_end(user=user)
    _audit(request, action=Action.LOGOUT_ALL, user=user)


def user_sessions_end(*, user: User) -> None:
    """End every session of the person: tokens issued so far are refused (REST 401), refresh
    tokens blacklisted, open dashboards closed after commit."""
    sessions.generation_bump(user=user)
    user_tokens_revoke(user=user)
    user_dashboards_close(user=user)


def user_tokens_revoke(*, user: User) -> int:
    """Blacklist every refresh token of the user (password reset, deactivation)."""
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(outstanding)


# --- Passwords ------------------------------------------------------------------------------


@transaction.atomic
def user_password_change(
    *, user: User, old_password: str, new_password: str, request: HttpRequest | None = None
) -> User:
    if not user.check_password(old_password):
        raise ValidationFailed(
            "The current password is wrong.",
            code="wrong_password",
            details={"old_password": ["The current password is wrong."]},
        )
    if new_password == old_password:
        raise ValidationFailed(
            "The new password must differ from the current one.",
            code="weak_password",
            details={"new_password": ["The new password must differ from the current one."]},
        )
    _password_check(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    # Every session ends, this one too: whoever else held the password is signed out, and the
    # person logs in again with the new one.
    user_sessions_end(user=user)
    _audit(request, action=Action.PASSWORD_CHANGE, user=user)
    # A reset code requested before the change must not undo it.
    otp.otp_discard(purpose=PASSWORD_RESET, user_id=user.pk)
    return user


def user_password_forgot(*, email: str) -> None:
    """Queue a reset code e-mail if an active account has this address; silent otherwise,
    so the answer never tells whether the address exists."""
    user = User.objects.filter(email__iexact=email_normalize(email), is_active=True).first()
    if user is None:
        logger.info("password reset requested for an unknown or inactive address")
        return
    transaction.on_commit(partial(send_password_reset_email.delay, user.pk))


@transaction.atomic
def user_password_reset(
    *, email: str, code: str, new_password: str, request: HttpRequest | None = None
) -> User:
    user = User.objects.filter(email__iexact=email_normalize(email), is_active=True).first()
    # The password is checked first so a weak one does not use up an attempt.
    _password_check(
        new_password, user=user or User(email=email_normalize(email)), field="new_password"
    )
    if user is None:
        raise otp.CodeInvalid("The code is not valid. Request a new one.")
    otp.otp_verify(purpose=PASSWORD_RESET, user_id=user.pk, code=code)
    user.set_password(new_password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    # Whoever held the account before the reset is signed out.
    user_sessions_end(user=user)
    _audit(request, action=Action.PASSWORD_RESET, user=user)
    logger.info("password reset for user %s", user.pk)
    return user
