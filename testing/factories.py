"""Test data factories, in one place for every app's tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.db import models
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, User
from alerts.models import AlarmLimit
from clinical.models import Device, Patient, Place, Ward
from clinical.tokens import token_generate, token_hash
from monitoring.readings import ReadingIn, StoredReading, Target, readings_store
from monitoring.selectors import device_target

DEFAULT_PASSWORD = "Str0ng-Passw0rd!"

_M = TypeVar("_M", bound=models.Model)
_T = TypeVar("_T")


class ModelFactory(factory.django.DjangoModelFactory[_M]):
    """A model factory whose call, ``PatientFactory(...)``, is typed as giving the model.

    factory_boy types ``create()`` and ``build()`` but not the metaclass ``__call__`` that
    runs them, and mypy does not read a metaclass ``__call__`` anyway (python/mypy#14122);
    it does read ``__new__``, so the call is declared here, for the type checker only.
    """

    if TYPE_CHECKING:

        def __new__(cls, **kwargs: Any) -> _M:  # type: ignore[misc]  # the model, not a factory
            ...


class PlaceFactory(ModelFactory[Place]):
    class Meta:
        model = Place

    name = factory.Sequence(lambda n: f"Hospital {n}")
    kind = Place.Kind.HOSPITAL
    address = "MG Road, Bengaluru"


class WardFactory(ModelFactory[Ward]):
    class Meta:
        model = Ward

    place = factory.SubFactory(PlaceFactory)
    name = factory.Sequence(lambda n: f"Ward {n}")


def _user_places_set(
    user: User, create: bool, extracted: list[Place] | None, **kwargs: object
) -> None:
    """``UserFactory(places=[...])``: saves the user, then sets its places."""
    if create:
        user.save()
        if extracted:
            user.places.set(extracted)


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    first_name = "Asha"
    last_name = "Rao"
    role = Role.NURSE
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    places = factory.PostGeneration(_user_places_set)


class PatientFactory(ModelFactory[Patient]):
    class Meta:
        model = Patient

    name = factory.Sequence(lambda n: f"Patient {n}")
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    sex = Patient.Sex.FEMALE
    monitoring_profile = Patient.Profile.ADULT
    ward = factory.SubFactory(WardFactory)
    place = factory.SelfAttribute("ward.place")
    bed = factory.Sequence(lambda n: f"B{n}")


if TYPE_CHECKING:

    class IssuedDevice(Device):
        """A device as the factory hands it back: with its plain token on ``.token``."""

        token: str

else:
    IssuedDevice = Device


class DeviceFactory(ModelFactory[IssuedDevice]):
    """``DeviceFactory(token="...")`` sets a known token; the plain token is kept on ``.token``."""

    class Meta:
        model = Device

    serial = factory.Sequence(lambda n: f"JAN-{n:06d}")
    model = "Janitri Keyar"
    patient = factory.SubFactory(PatientFactory)
    place = factory.SelfAttribute("patient.place")
    token = factory.LazyFunction(token_generate)
    token_hash = factory.LazyAttribute(lambda o: token_hash(o.token))

    @classmethod
    def _create(cls, model_class: type[Device], *args: Any, **kwargs: Any) -> IssuedDevice:
        token = kwargs.pop("token", None)
        obj: IssuedDevice = super()._create(model_class, *args, **kwargs)
        obj.token = token
        return obj


class AlarmLimitFactory(factory.django.DjangoModelFactory):
    """A patient's own heart-rate limits; the thresholds are the test's, the hold times (which
    every row needs) the adult defaults unless given."""

    class Meta:
        model = AlarmLimit

    patient = factory.SubFactory(PatientFactory)
    metric = "heart_rate"
    hold_high_seconds = 10
    hold_medium_seconds = 20
    hold_low_seconds = 30


class DataFactory(factory.Factory[_T]):
    """A factory of a plain (data) class, its call typed as giving the class (``ModelFactory``
    says why)."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:

        def __new__(cls, **kwargs: Any) -> _T:  # type: ignore[misc]  # the instance, not a factory
            ...


def _patient_id(o: Any) -> int:
    return int(o.patient.id if o.patient is not None else o.device.patient_id)


class ReadingInFactory(DataFactory[ReadingIn]):
    """A reading as ingest hands it to storage (``monitoring.readings.readings_store``): a heart
    rate of 80 recorded now, from ``device`` (for its patient) or for ``patient`` (a manual
    reading), without a seq unless given; ``patient_id``/``device_id`` may be given instead."""

    class Meta:
        model = ReadingIn

    class Params:
        patient = None
        device = None

    patient_id = factory.LazyAttribute(_patient_id)
    device_id = factory.LazyAttribute(lambda o: o.device.id if o.device is not None else None)
    metric = "heart_rate"
    value = 80
    recorded_at = factory.LazyFunction(timezone.now)
    seq = None
    entered_by_id = None


class StoredReadingFactory(DataFactory[StoredReading]):
    """A reading as storage hands it on (to the readings stream, the alarm rules, the live
    feed), without a database row: a heart rate of 80 recorded and received now, for
    ``patient`` (with its ward) or from ``device`` (for its patient), with the next id and no
    seq unless given."""

    class Meta:
        model = StoredReading

    class Params:
        patient = None
        device = None

    id = factory.Sequence(lambda n: n + 1)
    patient_id = factory.LazyAttribute(_patient_id)
    device_id = factory.LazyAttribute(lambda o: o.device.id if o.device is not None else None)
    ward_id = factory.LazyAttribute(lambda o: o.patient.ward_id if o.patient is not None else None)
    metric = "heart_rate"
    value = 80
    recorded_at = factory.LazyFunction(timezone.now)
    received_at = factory.SelfAttribute("recorded_at")
    seq = None


def samples_store(
    patient: Patient, samples: Iterable[tuple[float, float]], metric: str, *, shift: float = 0.0
) -> list[StoredReading]:
    """Store ``(epoch seconds, value)`` samples (``ctg.tests.traces`` makes them) as readings
    of ``patient`` without a device, moved by ``shift`` seconds, through the ingest pipeline's
    one-statement insert (tens of thousands of rows in a few seconds)."""
    return readings_store(
        readings=[
            ReadingInFactory(
                patient=patient,
                metric=metric,
                value=round(value),
                recorded_at=datetime.fromtimestamp(t + shift, tz=UTC),
            )
            for t, value in samples
        ]
    )


def patient_raw(ward: Ward, /, **overrides: Any) -> dict[str, Any]:
    """A new obstetric patient on ``ward`` as a REST client sends it, any field overridden."""
    return {
        "name": "Lakshmi Narayan",
        "mrn": "BLR-000123",
        "date_of_birth": "1995-04-12",
        "sex": "F",
        "monitoring_profile": "obstetric",
        "place": ward.place_id,
        "ward": ward.id,
        "bed": "L-07",
        **overrides,
    }


def reading_raw(seq: int | None = 1, **overrides: Any) -> dict[str, Any]:
    """A reading as a device or a REST client sends it: a heart rate of 80 recorded a second
    ago, with ``seq`` (None: without one), any field overridden."""
    raw: dict[str, Any] = {
        "metric": "heart_rate",
        "bpm": 80,
        "recorded_at": (timezone.now() - timedelta(seconds=1)).isoformat(),
    }
    if seq is not None:
        raw["seq"] = seq
    return {**raw, **overrides}


def ingest_target(device: Device) -> Target:
    """Where ``device``'s readings go (``monitoring.selectors.device_target``); the device must
    have a patient."""
    target = device_target(device)
    assert target is not None, f"device {device.pk} has no patient"
    return target


def bradycardia_raised_for_a_nurse(
    *, email_prefix: str, bpm: int, held: int, **place: Any
) -> dict[str, Any]:
    """A place (with ``place``'s fields), a nurse of it, an adult patient on one of its wards and
    a high-priority bradycardia alert raised for that patient (what the live delivery tests run
    inside a server's environment): ``{"event": the raise event's id, "nurse": her e-mail}``."""
    from alerts.services import alert_raise

    tag = uuid.uuid4().hex[:8]
    where = PlaceFactory(**place)
    nurse = UserFactory(
        role=Role.NURSE, places=[where], email=f"{email_prefix}-nurse-{tag}@example.org"
    )
    patient = PatientFactory(ward=WardFactory(place=where), monitoring_profile="adult")
    alert = alert_raise(
        patient_id=patient.id,
        kind="bradycardia",
        priority="high",
        message=f"Bradycardia: heart rate {bpm} bpm for {held} s.",
    )
    return {"event": alert.events.get().id, "nurse": nurse.email}


def otp_device_for(user: User) -> TOTPDevice:
    """A confirmed TOTP second factor for ``user``; ``totp_code(device)`` is its current code."""
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def totp_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"
