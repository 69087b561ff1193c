"""Request and response shapes of the account endpoints."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from accounts.models import Role, User
from accounts.selectors import place_model


class UserSerializer(serializers.ModelSerializer):
    places = serializers.PrimaryKeyRelatedField[models.Model](many=True, read_only=True)

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "places",
            "is_active",
            "must_change_password",
            "date_joined",
        )
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    otp = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="A 6-digit TOTP code or a recovery code, for a user with a second factor.",
    )


class OtpConfirmSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=512)
    otp = serializers.CharField(max_length=32)


class EnrollmentSerializer(serializers.Serializer):
    token = serializers.CharField()
    secret = serializers.CharField(help_text="Base32, for entering by hand.")
    otpauth_uri = serializers.CharField(help_text="otpauth://totp/... for a QR code.")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LoginResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class OtpConfirmResponseSerializer(LoginResponseSerializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Single-use; shown this once."
    )


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class PasswordForgotSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    code = serializers.RegexField(
        r"^\d{6}$", error_messages={"invalid": "Enter the 6-digit code from the e-mail."}
    )
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class MeUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class UserCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.NURSE)
    places = serializers.PrimaryKeyRelatedField(
        many=True, queryset=place_model().objects.all(), required=False
    )
    is_active = serializers.BooleanField(default=True)


class UserUpdateSerializer(serializers.Serializer):
    """PUT needs role, places and is_active; PATCH any subset. The e-mail is the login and
    stays as created."""

    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)
    places = serializers.PrimaryKeyRelatedField(many=True, queryset=place_model().objects.all())
    is_active = serializers.BooleanField()
