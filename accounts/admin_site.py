"""The Django admin behind the second factor: a person who has one, or whose role requires one
(``MFA_REQUIRED_ROLES``), signs in to /admin/ with a code as well (the same TOTP or recovery
codes as the API); otherwise the admin would open with a password alone. Every change made
in it is audited like a REST change (``register`` puts ``audit.admin_changes`` under every
model's admin). Installed as the
default admin site by ``accounts.admin_app.AdminConfig`` (in INSTALLED_APPS instead of
``django.contrib.admin``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest

from accounts import mfa
from accounts.models import User
from audit.admin_changes import audited_admin

SESSION_VERIFIED = "accounts.mfa_verified_user"


def _needs_code(user: Any) -> bool:
    return isinstance(user, User) and (mfa.mfa_required(user) or mfa.mfa_enabled(user))


class MfaAdminAuthenticationForm(AdminAuthenticationForm):
    otp = forms.CharField(
        label="Authenticator code (or a recovery code)",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.get_user()  # set by a successful password check (clean raised otherwise)
        if not _needs_code(user):
            return cleaned
        if not mfa.mfa_enabled(user):
            raise forms.ValidationError(
                "Your role requires a second factor: set it up by signing in to the dashboard "
                "first.",
                code="otp_enrollment_required",
            )
        if not mfa.mfa_verify(user=user, code=cleaned.get("otp") or ""):
            # Counted by django-axes like a wrong password.
            user_login_failed.send(
                sender=User, credentials={"username": user.email}, request=self.request
            )
            raise forms.ValidationError("The code is not valid.", code="otp_invalid")
        if self.request is not None:
            self.request.session[SESSION_VERIFIED] = user.pk
        return cleaned


class MfaAdminSite(admin.AdminSite):
    login_form = MfaAdminAuthenticationForm

    def register(
        self,
        model_or_iterable: Any,
        admin_class: type[admin.ModelAdmin] | None = None,
        **options: Any,
    ) -> None:
        """Every model's admin records its changes in the audit trail, as REST changes are
        (``audit.admin_changes``)."""
        super().register(
            model_or_iterable, audited_admin(admin_class or admin.ModelAdmin), **options
        )

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        user = request.user
        return not _needs_code(user) or request.session.get(SESSION_VERIFIED) == user.pk
