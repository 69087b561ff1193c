"""Alert lifecycle services and the alert REST API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Role
from alerts import selectors, services
from alerts.models import Alert, AlertEvent
from common.errors import Conflict, NotFound
from testing.assertions import assert_error
from testing.clients import bearer_client
from testing.factories import DeviceFactory, PatientFactory, PlaceFactory, UserFactory, WardFactory

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def raise_alert(patient, kind="bradycardia", priority="medium", at=T0, **kw):
    return services.alert_raise(
        patient_id=patient.id,
        kind=kind,
        priority=priority,
        message=f"{kind} {priority}",
        at=at,
        **kw,
    )


# --- Lifecycle --------------------------------------------------------------------------------


def test_one_open_alert_per_patient_and_kind(patient):
    first = raise_alert(patient)
    again = raise_alert(patient, at=T0 + timedelta(seconds=5))
    assert again.id == first.id
    other_kind = raise_alert(patient, kind="device_offline", priority="low")
    assert other_kind.id != first.id
    assert Alert.objects.filter(patient=patient).count() == 2
    # The database refuses a second open alert of the same kind, whatever the code does.
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(patient=patient, kind="bradycardia", priority="low", message="x")


def test_a_higher_priority_repeat_escalates_and_a_lower_one_changes_nothing(patient):
    alert = raise_alert(patient, priority="medium")
    raise_alert(patient, priority="low", at=T0 + timedelta(seconds=1))
    alert.refresh_from_db()
    assert alert.priority == "medium"
    raise_alert(patient, priority="high", at=T0 + timedelta(seconds=2))
    alert.refresh_from_db()
    assert (alert.priority, alert.message) == ("high", "bradycardia high")
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "updated"]


def test_every_committed_transition_is_logged_with_the_alert_patient_and_device(
    patient, nurse, caplog, django_capture_on_commit_callbacks
):
    device = DeviceFactory(patient=patient)
    with caplog.at_level(logging.INFO, logger="alerts.services.lifecycle"):
        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_alert(patient, priority="high", device_id=device.id)
        with django_capture_on_commit_callbacks(execute=True):
            services.alert_acknowledge(alert_id=alert.id, user=nurse, at=T0 + timedelta(seconds=3))
    lines = [r for r in caplog.records if r.name == "alerts.services.lifecycle"]
    assert [r.getMessage() for r in lines] == [
        f"alert {alert.id} raised (bradycardia, high priority)",
        f"alert {alert.id} acknowledged (bradycardia, high priority)",
    ]
    for line in lines:
        assert (line.alert_id, line.patient_id, line.device_id) == (alert.id, patient.id, device.id)


def test_every_transition_is_audited_with_who_and_when(patient, nurse, doctor):
    alert = raise_alert(patient, priority="high")
    ack_at = T0 + timedelta(seconds=30)
    services.alert_acknowledge(alert_id=alert.id, user=nurse, at=ack_at)
    services.alert_resolve(alert_id=alert.id, user=doctor, at=ack_at + timedelta(seconds=60))
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert (alert.acknowledged_by, alert.acknowledged_at) == (nurse, ack_at)
    events = list(alert.events.values_list("action", "by", "at"))
    assert events == [
        ("raised", None, T0),
        ("acknowledged", nurse.id, ack_at),
        ("resolved", doctor.id, ack_at + timedelta(seconds=60)),
    ]


def test_acknowledging_twice_changes_nothing_and_a_resolved_alert_conflicts(patient, nurse):
    alert = raise_alert(patient)
    services.alert_acknowledge(alert_id=alert.id, user=nurse)
    services.alert_acknowledge(alert_id=alert.id, user=nurse)
    assert alert.events.filter(action="acknowledged").count() == 1
    services.alert_condition_resolve(patient_id=patient.id, kind="bradycardia")
    with pytest.raises(Conflict):
        services.alert_acknowledge(alert_id=alert.id, user=nurse)
    with pytest.raises(Conflict):
        services.alert_resolve(alert_id=alert.id, user=nurse)


def test_an_acknowledged_alert_resolves_when_its_condition_ends(patient, nurse):
    alert = raise_alert(patient)
    services.alert_acknowledge(alert_id=alert.id, user=nurse)
    resolved = services.alert_condition_resolve(patient_id=patient.id, kind="bradycardia")
    assert resolved is not None and resolved.id == alert.id and resolved.state == "resolved"
    assert services.alert_condition_resolve(patient_id=patient.id, kind="bradycardia") is None


def test_people_of_other_places_cannot_touch_an_alert(patient):
    outsider = UserFactory(role=Role.DOCTOR, places=[PlaceFactory()])
    alert = raise_alert(patient)
    with pytest.raises(NotFound):
        services.alert_acknowledge(alert_id=alert.id, user=outsider)
    alert.refresh_from_db()
    assert alert.state == "active"


# --- Escalation with controlled time ------------------------------------------------------------


def test_escalation_fires_after_the_interval_and_repeats_until_acknowledged(
    patient, nurse, settings
):
    settings.ALERT_ESCALATION_SECONDS = 120
    alert = raise_alert(patient, priority="high")
    assert services.alerts_escalate_due(now=T0 + timedelta(seconds=119)) == []
    (first,) = services.alerts_escalate_due(now=T0 + timedelta(seconds=120))
    assert (first.alert_id, first.action) == (alert.id, "escalated")
    # Not again within the next interval, then again after it.
    assert services.alerts_escalate_due(now=T0 + timedelta(seconds=200)) == []
    assert len(services.alerts_escalate_due(now=T0 + timedelta(seconds=240))) == 1
    services.alert_acknowledge(alert_id=alert.id, user=nurse, at=T0 + timedelta(seconds=250))
    assert services.alerts_escalate_due(now=T0 + timedelta(seconds=10_000)) == []
    assert alert.events.filter(action="escalated").count() == 2


def test_only_high_priority_alerts_escalate(patient, ward, settings):
    settings.ALERT_ESCALATION_SECONDS = 60
    raise_alert(patient, priority="medium")
    raise_alert(PatientFactory(ward=ward), kind="device_offline", priority="low")
    assert services.alerts_escalate_due(now=T0 + timedelta(hours=1)) == []


def test_escalation_counts_from_when_the_alert_became_high(patient, settings):
    settings.ALERT_ESCALATION_SECONDS = 120
    raise_alert(patient, priority="medium")
    raise_alert(patient, priority="high", at=T0 + timedelta(seconds=100))
    assert services.alerts_escalate_due(now=T0 + timedelta(seconds=200)) == []
    assert len(services.alerts_escalate_due(now=T0 + timedelta(seconds=220))) == 1


def test_an_overlapping_scan_escalates_once(patient, settings):
    settings.ALERT_ESCALATION_SECONDS = 120
    alert = raise_alert(patient, priority="high")
    now = T0 + timedelta(seconds=130)
    assert services.alert_escalate(alert_id=alert.id, now=now) is not None
    assert services.alert_escalate(alert_id=alert.id, now=now) is None


def test_escalation_goes_to_the_places_admins_else_to_every_admin(patient, admin_user):
    alert = raise_alert(patient)
    assert selectors.alert_escalation_recipients(alert=alert) == [admin_user]
    local = UserFactory(role=Role.ADMIN, places=[patient.place])
    assert selectors.alert_escalation_recipients(alert=alert) == [local]


def test_recipients_are_the_places_doctors_and_nurses(patient, doctor, nurse, admin_user):
    UserFactory(role=Role.NURSE, places=[PlaceFactory()])
    UserFactory(role=Role.NURSE, places=[patient.place], is_active=False)
    alert = raise_alert(patient)
    assert set(selectors.alert_recipients(alert=alert)) == {doctor, nurse}


# --- REST -------------------------------------------------------------------------------------


@pytest.fixture
def alerts(patient, ward):
    """Three alerts in the doctor's place and one in another place."""
    other_patient = PatientFactory(ward=ward)
    elsewhere = PatientFactory(ward=WardFactory())
    return {
        "brady": raise_alert(patient, priority="high", at=T0),
        "offline": raise_alert(
            patient, kind="device_offline", priority="low", at=T0 + timedelta(minutes=1)
        ),
        "tachy": raise_alert(
            other_patient, kind="tachycardia", priority="medium", at=T0 + timedelta(minutes=2)
        ),
        "elsewhere": raise_alert(elsewhere, priority="high", at=T0 + timedelta(minutes=3)),
    }


def ids(response):
    return [item["id"] for item in response.json()["results"]]


def test_the_list_shows_only_visible_places_newest_first(doctor_api, alerts):
    response = doctor_api.get("/api/alerts/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert ids(response) == [alerts["tachy"].id, alerts["offline"].id, alerts["brady"].id]
    item = body["results"][-1]
    for field in (
        "id",
        "patient",
        "device",
        "kind",
        "priority",
        "state",
        "message",
        "raised_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "ward",
        "place",
        "metric",
    ):
        assert field in item
    assert (item["kind"], item["priority"], item["state"], item["metric"]) == (
        "bradycardia",
        "high",
        "active",
        "heart_rate",
    )


def test_admins_see_every_place(admin_api, alerts):
    assert admin_api.get("/api/alerts/").json()["count"] == 4


def test_list_filters(doctor_api, alerts, patient, ward):
    def get(query):
        return set(ids(doctor_api.get(f"/api/alerts/?{query}")))

    assert get("priority=high") == {alerts["brady"].id}
    assert get("priority=high&priority=low") == {alerts["brady"].id, alerts["offline"].id}
    assert get(f"patient={patient.id}") == {alerts["brady"].id, alerts["offline"].id}
    assert get(f"ward={ward.id}") == {alerts["brady"].id, alerts["offline"].id, alerts["tachy"].id}
    assert get(f"place={ward.place_id}") == {a.id for k, a in alerts.items() if k != "elsewhere"}
    assert get(f"place={alerts['elsewhere'].patient.place_id}") == set()
    assert get("kind=device_offline") == {alerts["offline"].id}
    after = (T0 + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    before = (T0 + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert get(f"raised_after={after}&raised_before={before}") == {alerts["offline"].id}
    services.alert_condition_resolve(patient_id=patient.id, kind="bradycardia")
    assert get("state=resolved") == {alerts["brady"].id}
    assert get("state=active") == {alerts["offline"].id, alerts["tachy"].id}


def test_list_ordering_search_and_pagination(doctor_api, alerts, patient):
    by_priority = ids(doctor_api.get("/api/alerts/?ordering=-priority"))
    assert by_priority == [alerts["brady"].id, alerts["tachy"].id, alerts["offline"].id]
    assert ids(doctor_api.get("/api/alerts/?ordering=raised_at"))[0] == alerts["brady"].id
    assert set(ids(doctor_api.get(f"/api/alerts/?search={patient.mrn}"))) == {
        alerts["brady"].id,
        alerts["offline"].id,
    }
    page = doctor_api.get("/api/alerts/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"] and page["count"] == 3


def test_bad_filters_answer_400_in_the_error_shape(doctor_api, alerts):
    response = doctor_api.get("/api/alerts/?state=bogus")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "state" in response.json()["error"]["details"]
    assert doctor_api.get("/api/alerts/?raised_after=yesterday").status_code == 400


@pytest.mark.parametrize("field", ["patient", "ward", "place", "device"])
@pytest.mark.parametrize("value", ["-6.6e98", "1e-09", "9223372036854775808", "0", "1.5"])
def test_id_filters_beyond_what_an_id_can_be_are_400_not_500(doctor_api, alerts, field, value):
    # Found by the schemathesis run: a decimal filter let 1e98 reach the database (500).
    error = assert_error(doctor_api.get("/api/alerts/", {field: value}), 400, "validation_error")
    assert field in error["details"]


def test_detail_includes_the_audit_trail(doctor_api, alerts, nurse):
    services.alert_acknowledge(alert_id=alerts["brady"].id, user=nurse)
    body = doctor_api.get(f"/api/alerts/{alerts['brady'].id}/").json()
    assert [event["action"] for event in body["events"]] == ["raised", "acknowledged"]
    assert body["events"][1]["by"] == nurse.id


def test_other_places_answer_404(doctor_api, alerts):
    other = alerts["elsewhere"].id
    for response in (
        doctor_api.get(f"/api/alerts/{other}/"),
        doctor_api.post(f"/api/alerts/{other}/acknowledge/"),
        doctor_api.post(f"/api/alerts/{other}/resolve/"),
        doctor_api.get("/api/alerts/999999/"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert Alert.objects.get(pk=other).state == "active"


def test_anonymous_callers_get_401(api, alerts):
    response = api.get("/api/alerts/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert api.post(f"/api/alerts/{alerts['brady'].id}/acknowledge/").status_code == 401


def test_acknowledge_and_resolve_over_rest(nurse_api, nurse, alerts):
    alert_id = alerts["brady"].id
    response = nurse_api.post(f"/api/alerts/{alert_id}/acknowledge/")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", nurse.id)
    assert body["acknowledged_at"]
    response = nurse_api.post(f"/api/alerts/{alert_id}/resolve/", {"note": "Leads replaced."})
    assert response.status_code == 200 and response.json()["state"] == "resolved"
    event = AlertEvent.objects.filter(alert_id=alert_id, action="resolved").get()
    assert (event.by, event.note) == (nurse, "Leads replaced.")


def test_acknowledging_a_resolved_alert_is_a_409_conflict(nurse_api, alerts):
    alert_id = alerts["brady"].id
    assert nurse_api.post(f"/api/alerts/{alert_id}/resolve/").status_code == 200
    for action in ("acknowledge", "resolve"):
        response = nurse_api.post(f"/api/alerts/{alert_id}/{action}/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"


def test_a_user_without_places_sees_nothing(alerts):
    client = bearer_client(UserFactory(role=Role.NURSE))
    assert client.get("/api/alerts/").json()["count"] == 0
    assert client.post(f"/api/alerts/{alerts['brady'].id}/acknowledge/").status_code == 404


def test_the_list_query_count_does_not_grow_with_alerts(
    doctor_api, ward, django_assert_max_num_queries
):
    for _ in range(30):
        raise_alert(PatientFactory(ward=ward), device_id=DeviceFactory().id)
    with django_assert_max_num_queries(6):
        assert doctor_api.get("/api/alerts/").json()["count"] == 30


# --- Alarm limits API ---------------------------------------------------------------------------


def test_limits_default_to_the_profile(doctor_api, obstetric_patient):
    body = doctor_api.get(f"/api/patients/{obstetric_patient.id}/alarm-limits/").json()
    assert body["monitoring_profile"] == "obstetric"
    by_metric = {item["metric"]: item for item in body["limits"]}
    assert set(by_metric) == {"heart_rate", "fetal_heart_rate"}
    fetal = by_metric["fetal_heart_rate"]
    assert (fetal["brady_high"], fetal["brady_medium"], fetal["tachy_medium"]) == (99, 109, 161)
    assert (fetal["hold_high_seconds"], fetal["hold_medium_seconds"]) == (180, 600)
    assert fetal["source"] == "default"


def test_put_overrides_merge_and_reset(nurse_api, patient):
    url = f"/api/patients/{patient.id}/alarm-limits/"
    response = nurse_api.put(
        url, {"limits": [{"metric": "heart_rate", "brady_medium": 55, "tachy_low": None}]}
    )
    assert response.status_code == 200, response.json()
    (limits,) = response.json()["limits"]
    assert limits["source"] == "patient"
    assert (limits["brady_high"], limits["brady_medium"], limits["tachy_low"]) == (40, 55, None)
    assert limits["hold_high_seconds"] == 10
    assert nurse_api.delete(url).status_code == 204
    assert nurse_api.get(url).json()["limits"][0]["source"] == "default"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"metric": "heart_rate", "brady_high": 60}, "brady_medium"),  # high not below medium
        ({"metric": "heart_rate", "tachy_high": 100}, "tachy_high"),  # below tachy_medium
        ({"metric": "heart_rate", "brady_high": 5}, "brady_high"),  # outside 20-300
        ({"metric": "heart_rate", "hold_high_seconds": -1}, "limits"),
        ({"metric": "fetal_heart_rate"}, "metric"),  # an adult has no fetal heart rate
        ({"metric": "spo2"}, "limits"),
    ],
)
def test_invalid_limits_answer_400(nurse_api, patient, item, field):
    response = nurse_api.put(f"/api/patients/{patient.id}/alarm-limits/", {"limits": [item]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert not patient.alarm_limits.exists()


def test_limits_of_other_places_answer_404(patient):
    outsider = bearer_client(UserFactory(role=Role.DOCTOR, places=[PlaceFactory()]))
    url = f"/api/patients/{patient.id}/alarm-limits/"
    assert outsider.get(url).status_code == 404
    assert (
        outsider.put(url, {"limits": [{"metric": "heart_rate"}]}, format="json").status_code == 404
    )


# --- Django admin -------------------------------------------------------------------------------


def test_the_admin_lists_alerts_events_deliveries_and_limits(client, patient):
    from testing.factories import AlarmLimitFactory

    superuser = UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    alert = raise_alert(patient)
    AlarmLimitFactory(patient=patient, brady_high=35)
    for url in (
        "/admin/alerts/alert/",
        f"/admin/alerts/alert/{alert.id}/change/",
        "/admin/alerts/alertevent/",
        "/admin/notifications/alertnotification/",
        "/admin/alerts/alarmlimit/",
    ):
        assert client.get(url).status_code == 200, url
    event = alert.events.get()
    # The audit trail cannot be edited.
    assert client.post(f"/admin/alerts/alertevent/{event.id}/change/", {}).status_code == 403
