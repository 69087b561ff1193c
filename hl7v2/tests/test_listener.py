"""The MLLP listener against a real MLLP client (asyncio streams), with the real ingest
batcher, database and Redis: every rule of the contract's "HL7 v2 over MLLP"."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import hl7
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from clinical.models import Device
from hl7v2.listener import MllpListener
from hl7v2.mllp import END_BLOCK, START_BLOCK, frame, frame_read, mllp_exchange
from hl7v2.pcd01 import ObservationOut, oru_r01_build
from hl7v2.services import HL7_SEQ_BASE
from monitoring.models import Reading
from testing.factories import DeviceFactory, PatientFactory
from testing.metrics import metric_value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SPO2 = "150456^MDC_PULS_OXIM_SAT_O2^MDC"
PERCENT = "262688^MDC_DIM_PERCENT^MDC"


def oru(control_id: str, device: Device, *observations: ObservationOut, **extra) -> str:
    """An ORU^R01 of ``device``'s patient; observations default to one heart rate of 72."""
    chosen = list(observations) or [ObservationOut("72", device=device.serial)]
    mrn = extra.pop("mrn", device.patient.mrn if device.patient else "")
    return oru_r01_build(control_id=control_id, observations=chosen, mrn=mrn, **extra)


def hr(value: str | int, device: Device, *, seconds_ago: float = 0, **extra) -> ObservationOut:
    at = timezone.now() - timedelta(seconds=seconds_ago)
    return ObservationOut(str(value), at=at, device=device.serial, **extra)


async def send(listener: MllpListener, *messages: str) -> list[hl7.Message]:
    host, port = listener.address
    return [hl7.parse(a) for a in await mllp_exchange(host, port, list(messages))]


def msa(ack: hl7.Message) -> tuple[str, str]:
    segment = ack.segment("MSA")
    return str(segment(1)), str(segment(2))


def err(ack: hl7.Message) -> tuple[str, str, str]:
    """ERR-3 (table 0357 code), ERR-4 (severity), ERR-5 (our code)."""
    segment = ack.segment("ERR")
    return str(segment(3)(1)(1)), str(segment(4)), str(segment(5))


async def readings(device: Device) -> list[Reading]:
    rows = Reading.objects.filter(device=device).order_by("recorded_at")
    return await sync_to_async(lambda: list(rows))()


async def test_ack_follows_the_commit_and_says_what_was_skipped(mllp, device):
    message = oru(
        "MSG-1",
        device,
        hr(71, device, seconds_ago=2),
        ObservationOut("97", at=timezone.now(), code=SPO2, unit=PERCENT, device=device.serial),
        hr("72.5", device, seconds_ago=1),
    )
    (ack,) = await send(mllp, message)
    # The moment the ACK arrives, the readings are committed.
    stored = await readings(device)
    assert msa(ack) == ("AA", "MSG-1")
    assert str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    assert [(r.metric, r.value, r.patient_id) for r in stored] == [
        ("heart_rate", 71, device.patient_id),
        ("heart_rate", 73, device.patient_id),  # 72.5 rounds half up
    ]
    assert all(r.seq is not None and r.seq >= HL7_SEQ_BASE for r in stored)
    code, severity, ours = err(ack)
    assert (code, severity, ours) == ("0", "W", "note")
    assert "150456" in str(ack.segment("ERR")(8))


async def test_a_resent_message_is_acknowledged_again_and_stored_once(mllp, device):
    message = oru("RESEND-1", device, hr(80, device, seconds_ago=1), hr(81, device))
    first, again = await send(mllp, message, message)
    (third,) = await send(mllp, message)  # and on a new connection
    assert [msa(a) for a in (first, again, third)] == [("AA", "RESEND-1")] * 3
    assert [r.value for r in await readings(device)] == [80, 81]
    # Another control id is another message, even with the same content.
    (other,) = await send(mllp, message.replace("RESEND-1", "RESEND-2"))
    assert msa(other) == ("AA", "RESEND-2")
    assert len(await readings(device)) == 4


async def test_the_device_is_msh3_component_2_when_obx18_is_empty(mllp, device):
    message = oru_r01_build(
        control_id="GW-1",
        observations=[ObservationOut("66", at=timezone.now())],
        mrn=device.patient.mrn,
        gateway=device.serial,
    )
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "GW-1")
    assert [r.value for r in await readings(device)] == [66]


async def test_the_time_is_obr7_when_obx14_is_empty(mllp, device):
    at = timezone.now().replace(microsecond=0) - timedelta(seconds=30)
    message = oru("OBR-1", device, ObservationOut("70", device=device.serial), at=at)
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "OBR-1")
    (stored,) = await readings(device)
    assert stored.recorded_at == at


async def test_version_2_5_and_every_heart_rate_code_are_taken(mllp, device):
    codes = [
        "147842^MDC_ECG_HEART_RATE^MDC",
        "149514^MDC_PULS_RATE^MDC",
        "149530^MDC_PULS_OXIM_PULS_RATE^MDC",
        "8867-4^Heart rate^LN",
    ]
    observations = [
        hr(60 + i, device, seconds_ago=4 - i, code=code, unit="/min")
        for i, code in enumerate(codes)
    ]
    (ack,) = await send(mllp, oru("V25-1", device, *observations, version="2.5"))
    assert msa(ack) == ("AA", "V25-1")
    assert [r.value for r in await readings(device)] == [60, 61, 62, 63]


async def test_fetal_heart_rate_is_taken_for_an_obstetric_patient_only(mllp, obstetric_patient):
    device = await sync_to_async(DeviceFactory)(patient=obstetric_patient)
    fetal = hr(140, device, code="55283-6^Fetal Heart rate^LN", unit="{beats}/min")
    (ack,) = await send(mllp, oru("FHR-1", device, fetal))
    assert msa(ack) == ("AA", "FHR-1")
    assert [(r.metric, r.value) for r in await readings(device)] == [("fetal_heart_rate", 140)]

    adult = await sync_to_async(DeviceFactory)()
    (refused,) = await send(mllp, oru("FHR-2", adult, hr(140, adult, code="55283-6^FHR^LN")))
    assert msa(refused) == ("AE", "FHR-2")
    assert err(refused)[2] == "validation_error"


async def test_status_x_and_placeholder_values_are_not_readings(mllp, device):
    message = oru(
        "X-1",
        device,
        hr(75, device, status="X"),
        hr(-999, device),
        hr("", device),
        hr(76, device),
    )
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "X-1")
    assert [r.value for r in await readings(device)] == [76]


async def _bad_row(case: str, device: Device) -> ObservationOut:
    """One observation refused for ``case``."""
    if case == "unknown_device":
        return ObservationOut("70", at=timezone.now(), device="NO-SUCH-DEVICE")
    if case == "device_unassigned":
        free = await sync_to_async(DeviceFactory)(patient=None, place=device.place)
        return hr(70, free)
    if case == "validation_error":
        return hr(400, device)
    if case == "unit_not_supported":
        return hr(1, device, unit="264928^MDC_DIM_BEAT_PER_SEC^MDC")
    return hr("fast", device)


ROW_CASES = [
    ("unknown_device", "204", "unknown_device", 18),
    ("device_unassigned", "204", "device_unassigned", 18),
    ("validation_error", "207", "validation_error", 5),  # out of range
    ("unit_not_supported", "103", "unit_not_supported", 6),
    ("not_a_number", "102", "validation_error", 5),
]


@pytest.mark.parametrize(("case", "code", "ours", "field"), ROW_CASES)
async def test_a_bad_row_alone_is_ae_with_err_and_stores_nothing(
    mllp, device, case, code, ours, field
):
    bad = await _bad_row(case, device)
    answers = await send(mllp, oru("AE-1", device, bad), oru("AFTER-1", device))
    assert msa(answers[0]) == ("AE", "AE-1")
    assert err(answers[0]) == (code, "E", ours)
    assert str(answers[0].segment("ERR")(2)) == f"OBX^1^{field}"
    # ... and the connection stays open: the next message on it is answered and stored.
    assert msa(answers[1]) == ("AA", "AFTER-1")
    assert [r.value for r in await readings(device)] == [72]


@pytest.mark.parametrize(("case", "code", "ours", "field"), ROW_CASES)
async def test_one_bad_row_does_not_drop_the_good_ones(mllp, device, case, code, ours, field):
    # A good heart rate and a bad row in one message: the good one is stored and the answer is
    # AA with a warning ERR (severity W) at the bad row, so the sender does not resend.
    bad = await _bad_row(case, device)
    (ack,) = await send(mllp, oru("ROWS-1", device, hr(70, device, seconds_ago=1), bad))
    assert msa(ack) == ("AA", "ROWS-1")
    assert err(ack) == (code, "W", ours)
    assert str(ack.segment("ERR")(2)) == f"OBX^2^{field}"
    assert [r.value for r in await readings(device)] == [70]


@pytest.mark.parametrize("case", ["device_inactive", "patient_mismatch"])
async def test_a_message_of_an_inactive_device_or_another_patient_is_ae(mllp, device, case):
    good = hr(70, device, seconds_ago=1)
    if case == "device_inactive":
        await sync_to_async(Device.objects.filter(id=device.id).update)(is_active=False)
        message = oru("AE-1", device, good)
    else:
        other = await sync_to_async(PatientFactory)(ward=device.patient.ward)
        message = oru("AE-1", device, good, mrn=other.mrn)
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AE", "AE-1")
    assert err(ack)[1:] == ("E", case)
    assert await readings(device) == []


@pytest.mark.parametrize(
    ("message", "control_id", "code", "ours"),
    [
        ("MSH|^~\\&|A|B|C|D|20260101000000||SIU^S12^SIU_S12|ADT-1|P|2.6\rPID|||1\r",
         "ADT-1", "200", "unsupported_message_type"),
        ("MSH|^~\\&|A|B|C|D|20260101000000||ORU^R30^ORU_R30|R30-1|P|2.6\rPID|||1\r",
         "R30-1", "201", "unsupported_event"),
        ("MSH|^~\\&|A|B|C|D|20260101000000||ORU^R01^ORU_R01|V23-1|P|2.3\rPID|||1\r",
         "V23-1", "203", "unsupported_version"),
        ("MSH|^~\\&|A|B|C|D|20260101000000||ORU^R01^ORU_R01||P|2.6\rPID|||1\r",
         "", "101", "missing_control_id"),
        ("this is not HL7", "", "100", "parse_error"),
    ],
)  # fmt: skip
async def test_messages_not_taken_are_ar_with_err_and_the_connection_stays(
    mllp, device, message, control_id, code, ours
):
    refused, after = await send(mllp, message, oru("AFTER-AR", device))
    assert msa(refused) == ("AR", control_id)
    assert err(refused) == (code, "E", ours)
    assert msa(after) == ("AA", "AFTER-AR")
    assert len(await readings(device)) == 1


async def test_pipelined_messages_are_answered_in_order(mllp, device):
    messages = [oru(f"P-{i}", device, hr(60 + i, device, seconds_ago=30 - i)) for i in range(20)]
    messages[7] = oru("P-7", device, hr(999, device))  # refused in the middle
    acks = await send(mllp, *messages)
    assert [msa(a) for a in acks] == [
        ("AE" if i == 7 else "AA", f"P-{i}") for i in range(len(messages))
    ]
    assert [r.value for r in await readings(device)] == [60 + i for i in range(20) if i != 7]


async def test_many_connections_at_once(mllp):
    devices = await sync_to_async(lambda: [DeviceFactory() for _ in range(30)])()
    batches = [
        send(mllp, *(oru(f"C{d.id}-{i}", d, hr(70 + i, d, seconds_ago=5 - i)) for i in range(3)))
        for d in devices
    ]
    results = await asyncio.gather(*batches)
    assert all(msa(a)[0] == "AA" for acks in results for a in acks)
    count = await sync_to_async(Reading.objects.filter(device__in=devices).count)()
    assert count == 90


async def test_bytes_outside_frames_are_skipped_and_the_messages_after_them_answered(mllp, device):
    host, port = mllp.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"GET / HTTP/1.1\r\n\r\n" + frame(oru("G-1", device, hr(61, device, seconds_ago=2)))
    )
    writer.write(b"\x00\xffjunk" + END_BLOCK + b"more junk")  # a stray end, then noise
    writer.write(frame(oru("G-2", device, hr(62, device, seconds_ago=1))))
    writer.write(START_BLOCK + b"half a frame, then a new one starts")
    writer.write(frame(oru("G-3", device, hr(63, device))))
    await writer.drain()
    answers = []
    for _ in range(3):
        found = await asyncio.wait_for(frame_read(reader, limit=2**20), 10)
        assert found is not None
        answers.append(msa(hl7.parse(found.text())))
    writer.close()
    assert answers == [("AA", "G-1"), ("AA", "G-2"), ("AA", "G-3")]
    assert [r.value for r in await readings(device)] == [61, 62, 63]


async def test_an_oversized_frame_is_refused_and_the_connection_goes_on(settings, device):
    settings.HL7_MLLP_MAX_FRAME_BYTES = 4000
    listener = MllpListener()
    await listener.start("127.0.0.1", 0)
    try:
        many = [hr(70, device, seconds_ago=i) for i in range(100)]
        big = oru("BIG-1", device, *many)
        assert len(big) > 4000
        # A buffer's worth past the limit too (the reader drops it as it goes).
        huge = oru("HUGE-1", device, *many * 10)
        refused, refused_huge, after = await send(listener, big, huge, oru("SMALL-1", device))
    finally:
        await listener.stop()
    assert msa(refused) == ("AR", "BIG-1") and msa(refused_huge) == ("AR", "HUGE-1")
    assert err(refused) == ("100", "E", "frame_too_large")
    assert msa(after) == ("AA", "SMALL-1")
    assert [r.value for r in await readings(device)] == [72]


async def test_an_idle_connection_is_closed(settings, device):
    settings.HL7_MLLP_IDLE_TIMEOUT = 0.5
    listener = MllpListener()
    host, port = await listener.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(frame(oru("IDLE-1", device)))
        found = await asyncio.wait_for(frame_read(reader, limit=2**20), 10)
        assert found is not None and msa(hl7.parse(found.text())) == ("AA", "IDLE-1")
        # Then silence: the server closes the connection (end of stream, no error).
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    finally:
        await listener.stop()


async def test_a_deactivated_device_is_refused_once_its_lookup_expires(mllp, device):
    clock = [1000.0]
    mllp.devices.clock = lambda: clock[0]
    (first,) = await send(mllp, oru("TTL-1", device, hr(70, device, seconds_ago=2)))
    await sync_to_async(Device.objects.filter(id=device.id).update)(is_active=False)
    clock[0] += mllp.devices.ttl + 0.1
    (second,) = await send(mllp, oru("TTL-2", device, hr(71, device)))
    assert [msa(a) for a in (first, second)] == [("AA", "TTL-1"), ("AE", "TTL-2")]
    assert err(second)[2] == "device_inactive"
    assert [r.value for r in await readings(device)] == [70]


async def test_readings_through_the_listener_are_counted_under_the_hl7_path(mllp, device):
    hl7_before = metric_value("monitor_readings_ingested_total", path="hl7")
    ws_before = metric_value("monitor_readings_ingested_total", path="ws")
    (ack,) = await send(mllp, oru("COUNT-1", device, hr(70, device, seconds_ago=1), hr(71, device)))
    assert msa(ack) == ("AA", "COUNT-1")
    assert metric_value("monitor_readings_ingested_total", path="hl7") - hl7_before == 2
    assert metric_value("monitor_readings_ingested_total", path="ws") == ws_before


async def test_a_reading_the_database_refuses_makes_the_message_ae_and_the_rest_is_stored(
    mllp, device, monkeypatch
):
    # Validation keeps such readings out; this stands for whatever it may miss: a row the
    # database refuses although it passed every rule.
    from dataclasses import replace

    from hl7v2 import services
    from monitoring.tests.test_ws_hardening import _unstorable_time

    real_parse = services.reading_parse

    def parse_spoiling_71(raw, **kwargs):
        parsed = real_parse(raw, **kwargs)
        return replace(parsed, recorded_at=_unstorable_time()) if parsed.value == 71 else parsed

    monkeypatch.setattr(services, "reading_parse", parse_spoiling_71)
    message = oru("SPOIL-1", device, hr(71, device, seconds_ago=2), hr(72, device, seconds_ago=1))
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AE", "SPOIL-1")
    assert err(ack)[2] == "not_storable"
    assert [r.value for r in await readings(device)] == [72]


async def test_a_message_whose_audit_record_fails_gets_no_ack_and_the_connection_closes(
    mllp, device, monkeypatch
):
    from hl7v2 import listener as listener_module

    async def failing(answer, *, peer):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(listener_module, "hl7_message_record", failing)
    host, port = mllp.address
    with pytest.raises(ConnectionError):
        await mllp_exchange(host, port, [oru("NOAUDIT-1", device)])
