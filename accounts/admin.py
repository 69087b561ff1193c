"""Django admin for people. Adding a user takes no password: the new user gets their login
and a one-time password by e-mail, exactly as with POST /api/users/. Place membership is
added to these pages by the clinical app, which owns places."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import User
from common.errors import ApplicationError


class UserAddForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("email", "first_name", "last_name", "role", "is_active")

    def clean_email(self) -> str:
        email = services.email_normalize(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this e-mail already exists.")
        return email


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    add_form = UserAddForm
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "description": "The user receives their login and a one-time password by "
                "e-mail and must change it at first login.",
                "fields": ("email", "first_name", "last_name", "role", "is_active"),
            },
        ),
    )
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("first_name", "last_name")}),
        ("Access", {"fields": ("role", "is_active", "must_change_password")}),
        ("Django admin site", {"fields": ("is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")
    list_display = (
        "email",
        "first_name",
        "last_name",
        "role",
        "is_active",
        "must_change_password",
        "date_joined",
    )
    list_filter: ClassVar[tuple[str, ...]] = ("role", "is_active", "must_change_password")
    search_fields = ("email", "first_name", "last_name")
    ordering = ("email",)
    filter_horizontal = ("groups",)
    actions = ("send_new_one_time_password",)

    def save_model(
        self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = services.user_create(
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            role=data["role"],
            places=data.get("places") or (),
            is_active=data.get("is_active", True),
        )
        # The admin goes on with the form's instance (related fields, log entry, redirect).
        obj.pk = created.pk
        obj.refresh_from_db()
        obj._state.adding = False

    @admin.action(description="E-mail a new one-time password")
    def send_new_one_time_password(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = request.user
        assert isinstance(actor, User)  # the admin site lets only signed-in staff here
        count = 0
        for user in queryset.filter(is_active=True):  # inactive users could not log in
            try:
                services.user_credentials_reissue(user=user, actor=actor)
            except ApplicationError as exc:
                self.message_user(request, f"{user.email}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, user, "E-mailed a new one-time password.")
            count += 1
        self.message_user(
            request, f"A new one-time password goes to {count} user(s).", messages.SUCCESS
        )
