"""Account endpoints: registration, JWT sessions, passwords, the caller, user management."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import serializers as s
from accounts import services
from accounts.models import Role, User
from accounts.permissions import IsAdminRole, IsPerson, request_person
from accounts.throttles import (
    LoginThrottle,
    PasswordForgotThrottle,
    PasswordResetThrottle,
    RegisterThrottle,
)
from audit.models import Action
from common.api import ERROR_RESPONSES, ErrorSerializer
from common.filters import IdFilter

AUTH_TAG = ["auth"]
USERS_TAG = ["users"]


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {409: "Conflict", 429: "Too many requests (code `throttled`)"}
    return {
        code: ERROR_RESPONSES.get(code)
        or OpenApiResponse(ErrorSerializer, description=descriptions[code])
        for code in codes
    }


def _session_body(user: User, refresh: RefreshToken) -> dict[str, Any]:
    """A new session's answer: its access and refresh tokens and the user."""
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "user": s.UserSerializer(user).data,
    }


class PublicView(APIView):
    """No credentials needed: a stale Authorization header is ignored, not refused."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get_authenticate_header(self, request: Request) -> str:
        # A refused token is a 401 (DRF would turn it into a 403 without any authenticator).
        return 'Bearer realm="api"'

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # 401s raised by services (bad credentials) carry the challenge like DRF's own.
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            response.setdefault("WWW-Authenticate", self.get_authenticate_header(request))
        return super().finalize_response(request, response, *args, **kwargs)


class RegisterView(PublicView):
    throttle_classes = (RegisterThrottle,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Register a new account",
        description=(
            "Creates a nurse with no places: no clinical access until an administrator "
            "grants a place. No tokens are returned; log in afterwards. An e-mail already "
            "in use answers 409 `email_taken`; a weak password 400 `weak_password` with "
            "`details.password`."
        ),
        request=s.RegisterSerializer,
        responses={201: s.UserSerializer, **errors(400, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(s.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    throttle_classes = (LoginThrottle,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Log in: an access and a refresh token",
        description=(
            "Bad e-mail or password: 401 `invalid_credentials`; a disabled account: 401 "
            "`account_disabled`. When `user.must_change_password` is true, every other "
            "call answers 403 `password_change_required` until "
            "`/api/auth/password/change/` succeeds.\n\n"
            "Second factor (docs/security.md): a user who has one answers 401 `otp_required` "
            "until `otp` (a 6-digit TOTP code or a recovery code) is sent with the password; a "
            "wrong code is 401 `otp_invalid` and counts towards the lockout. A user whose role "
            "is in `MFA_REQUIRED_ROLES` and who has none answers 403 `otp_enrollment_required` "
            "with `enrollment: {token, secret, otpauth_uri}`: confirm it at "
            "`/api/auth/otp/confirm/`."
        ),
        request=s.LoginSerializer,
        responses={200: s.LoginResponseSerializer, **errors(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, refresh = services.user_login(request=request._request, **data.validated_data)
        return Response(_session_body(user, refresh))


class OtpConfirmView(PublicView):
    throttle_classes = (LoginThrottle,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Confirm a second-factor enrolment: tokens and recovery codes",
        description=(
            "`token` from the enrolment, `otp` the authenticator's current code. A wrong code "
            "is 401 `otp_invalid` (counted towards the lockout); an unknown or expired "
            "enrolment 400 `enrollment_invalid`. The recovery codes are shown this once."
        ),
        request=s.OtpConfirmSerializer,
        responses={200: s.OtpConfirmResponseSerializer, **errors(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.OtpConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, refresh, codes = services.user_otp_confirm(
            request=request._request, **data.validated_data
        )
        return Response({**_session_body(user, refresh), "recovery_codes": codes})


class OtpEnrollView(APIView):
    permission_classes = (IsPerson,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Add a second factor to one's account",
        description=(
            "A new TOTP secret; confirm it with the first code at `/api/auth/otp/confirm/` "
            "(which returns new tokens and the recovery codes). Until then nothing changes."
        ),
        request=None,
        responses={201: s.EnrollmentSerializer, **errors(401)},
    )
    def post(self, request: Request) -> Response:
        enrollment = services.user_otp_enroll(user=request_person(request))
        return Response(asdict(enrollment), status=status.HTTP_201_CREATED)


class RefreshView(PublicView):
    @extend_schema(
        tags=AUTH_TAG,
        summary="A new access token (and a rotated refresh token)",
        description=(
            "The refresh token given is blacklisted and a new one is returned: keep it. "
            "An expired, blacklisted or malformed token answers 401 `token_not_valid`."
        ),
        request=s.RefreshSerializer,
        responses={200: s.TokenPairSerializer, **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        data = s.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.user_token_refresh(refresh=data.validated_data["refresh"]))


class LogoutView(PublicView):
    @extend_schema(
        tags=AUTH_TAG,
        summary="Log out: the refresh token and the access tokens of its session stop working",
        request=s.RefreshSerializer,
        responses={205: OpenApiResponse(description="Logged out"), **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        data = s.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(refresh=data.validated_data["refresh"], request=request._request)
        return Response(status=status.HTTP_205_RESET_CONTENT)


class LogoutAllView(APIView):
    permission_classes = (IsPerson,)
    password_change_exempt = True

    @extend_schema(
        tags=AUTH_TAG,
        summary="Log out everywhere",
        description=(
            "Every refresh and access token of the caller stops working (401), this one "
            "too, and their open dashboards close with 4401."
        ),
        request=None,
        responses={205: OpenApiResponse(description="Logged out everywhere"), **errors(401)},
    )
    def post(self, request: Request) -> Response:
        services.user_logout_all(user=request_person(request), request=request._request)
        return Response(status=status.HTTP_205_RESET_CONTENT)


class MeView(APIView):
    permission_classes = (IsPerson,)
    password_change_exempt = True

    @extend_schema(
        tags=AUTH_TAG, summary="The caller", responses={200: s.UserSerializer, **errors(401)}
    )
    def get(self, request: Request) -> Response:
        return Response(s.UserSerializer(request.user).data)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Change one's own names",
        request=s.MeUpdateSerializer,
        responses={200: s.UserSerializer, **errors(400, 401)},
    )
    def patch(self, request: Request) -> Response:
        data = s.MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_profile_update(user=request_person(request), **data.validated_data)
        return Response(s.UserSerializer(user).data)


class PasswordChangeView(APIView):
    permission_classes = (IsPerson,)
    password_change_exempt = True

    @extend_schema(
        tags=AUTH_TAG,
        summary="Change one's password",
        description=(
            "Wrong current password: 400 `wrong_password` (`details.old_password`); a weak "
            "or unchanged new password: 400 `weak_password` (`details.new_password`). "
            "Clears `must_change_password`. Every session of the account ends, this one too "
            "(its tokens answer 401, open dashboards close with 4401): log in again with the "
            "new password."
        ),
        request=s.PasswordChangeSerializer,
        responses={200: s.UserSerializer, **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_password_change(
            user=request_person(request), request=request._request, **data.validated_data
        )
        return Response(s.UserSerializer(user).data)


class PasswordForgotView(PublicView):
    throttle_classes = (PasswordForgotThrottle,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="E-mail a 6-digit password reset code",
        description=(
            "Always 202, whether or not the address has an account. The code is valid for "
            "OTP_TTL_SECONDS (10 minutes), works once, and a new request replaces it."
        ),
        request=s.PasswordForgotSerializer,
        responses={202: OpenApiResponse(description="Accepted"), **errors(400, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordForgotSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_password_forgot(email=data.validated_data["email"])
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetView(PublicView):
    throttle_classes = (PasswordResetThrottle,)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Set a new password with the e-mailed code",
        description=(
            "Errors (400): `invalid_code`, `code_expired`, `too_many_attempts` (after "
            "OTP_MAX_ATTEMPTS wrong codes the code is void), `weak_password` "
            "(`details.new_password`). Success signs out every session of the account."
        ),
        request=s.PasswordResetSerializer,
        responses={200: s.UserSerializer, **errors(400, 429)},
    )
    def post(self, request: Request) -> Response:
        data = s.PasswordResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_password_reset(request=request._request, **data.validated_data)
        return Response(s.UserSerializer(user).data)


class UserFilter(filters.FilterSet):
    role = filters.ChoiceFilter(choices=Role.choices)
    place = IdFilter(field_name="places", distinct=True)
    is_active = filters.BooleanFilter()

    class Meta:
        model = User
        fields = ("role", "place", "is_active")


@extend_schema_view(
    list=extend_schema(
        summary="List users", responses={200: s.UserSerializer(many=True), **errors(400, 401, 403)}
    ),
    retrieve=extend_schema(
        summary="One user", responses={200: s.UserSerializer, **errors(401, 403, 404)}
    ),
    create=extend_schema(
        summary="Create a user (e-mails a one-time password)",
        description=(
            "The new user gets their login and a one-time password by e-mail and must change "
            "it at first login. An e-mail already in use answers 409 `email_taken`."
        ),
        request=s.UserCreateSerializer,
        responses={201: s.UserSerializer, **errors(400, 401, 403, 409)},
    ),
    update=extend_schema(
        summary="Replace a user's names, role, places and active flag",
        request=s.UserUpdateSerializer,
        responses={200: s.UserSerializer, **errors(400, 401, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Change some of a user's names, role, places and active flag",
        request=s.UserUpdateSerializer,
        responses={200: s.UserSerializer, **errors(400, 401, 403, 404)},
    ),
)
@extend_schema(tags=USERS_TAG)
class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Administrators manage people. Deactivate with `is_active: false` (no delete: alerts
    and acknowledgements keep pointing at the person)."""

    permission_classes = (IsAuthenticated, IsAdminRole)
    serializer_class = s.UserSerializer
    filterset_class = UserFilter
    audit_detail_fields = ("role", "places", "is_active")
    audit_actions = {"otp_reset": Action.OTP_RESET}
    search_fields = ("email", "first_name", "last_name")
    ordering_fields = ("id", "email", "first_name", "last_name", "role", "date_joined", "is_active")
    ordering = ("email",)

    def get_queryset(self) -> QuerySet[User]:
        return User.objects.prefetch_related("places").order_by("email")

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        data = s.UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        return Response(s.UserSerializer(user).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        partial = bool(kwargs.get("partial"))
        user = self.get_object()
        data = s.UserUpdateSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=user, actor=request_person(request), **data.validated_data)
        user = self.get_queryset().get(pk=user.pk)
        return Response(s.UserSerializer(user).data)

    @extend_schema(
        summary="E-mail the user a new one-time password",
        description=(
            "For a user who lost the first e-mail or their password: the current password "
            "stops working, their sessions end, and they must change the new one at login. "
            "An inactive user answers 409 `user_inactive`; a superuser 403 "
            "`cannot_reissue_superuser`, the caller themselves 403 `cannot_reissue_self`."
        ),
        request=None,
        responses={202: s.UserSerializer, **errors(401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="send-one-time-password")
    def send_one_time_password(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        services.user_credentials_reissue(user=user, actor=request_person(request))
        return Response(s.UserSerializer(user).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Remove the user's second factor (a lost authenticator)",
        description=(
            "Another administrator only (yourself: 403 `cannot_reset_self`; use a recovery "
            "code). A user whose role requires a second factor enrols again at next login."
        ),
        request=None,
        responses={204: OpenApiResponse(description="Removed"), **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="otp-reset")
    def otp_reset(self, request: Request, pk: str | None = None) -> Response:
        services.user_otp_reset(user=self.get_object(), actor=request_person(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
