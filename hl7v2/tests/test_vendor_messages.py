"""Messages in the shapes other vendors' gateways send, each of which once went wrong, through
the real listener: the device of a group, the pulse rate as its own source, every PID-3
repetition, the ACK's header, versions, units, enhanced mode, demo data and poison messages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import hl7
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from hl7v2.mllp import frame, frame_read
from hl7v2.pcd01 import ObservationOut, hl7_dtm, oru_r01_build
from hl7v2.tests.test_listener import err, hr, msa, oru, readings, send
from testing.factories import DeviceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def mindray(control_id: str, *, serial: str, gateway: str, mrn: str = "", hr_value=72) -> str:
    """A Mindray eGateway ORU: OBX-18 on the monitor's MDS row only; the metric rows of the
    group (OBX-4 1.x.x.x) carry none, and MSH-3 names the gateway."""
    when = hl7_dtm(timezone.now())
    return "\r".join(
        [
            f"MSH|^~\\&|EGATEWAY^{gateway}^EUI-64|MINDRAY|||{when}||ORU^R01^ORU_R01|{control_id}"
            "|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
            f"PID|||{mrn}",
            f"OBR|1|{control_id}||182777000^monitoring of patient^SNOMED-CT|||{when}",
            f"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||{serial}",
            f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|{hr_value}|264864^MDC_DIM_BEAT_PER_MIN"
            f"^MDC|||||F|||{when}",
            f"OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.1|75|264864^MDC_DIM_BEAT_PER_MIN"
            f"^MDC|||||F|||{when}",
        ]
    )


async def test_rows_without_obx18_take_the_device_of_their_monitor_group(mllp, device):
    # The gateway's own EUI-64 is a registered device of another patient: rows must not fall
    # back to it while their group names the monitor.
    other = await sync_to_async(DeviceFactory)(place=device.place)
    message = mindray("MR-1", serial=device.serial, gateway=other.serial)
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "MR-1")
    assert [(r.metric, r.value, r.patient_id) for r in await readings(device)] == [
        ("heart_rate", 72, device.patient_id),
        ("pulse_rate", 75, device.patient_id),
    ]
    assert await readings(other) == []


async def test_a_pulse_rate_from_the_oximeter_keeps_its_source(mllp, device):
    at = timezone.now() - timedelta(seconds=1)
    message = oru(
        "PR-1",
        device,
        hr(72, device, seconds_ago=1),
        ObservationOut(
            "75", at=at, code="149530^MDC_PULS_OXIM_PULS_RATE^MDC", device=device.serial
        ),
        ObservationOut("76", at=at, code="149514^MDC_PULS_RATE^MDC", device=device.serial),
    )
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "PR-1")
    assert sorted((r.metric, r.value) for r in await readings(device)) == [
        ("heart_rate", 72),
        ("pulse_rate", 75),
        ("pulse_rate", 76),
    ]


@pytest.mark.parametrize(
    ("pid3", "answer"),
    [
        ("99887766^^^HOSPITAL^PI~{mrn}^^^HOSPITAL^MR", "AA"),
        ("{mrn}^^^HOSPITAL^MR~99887766^^^HOSPITAL^PI", "AA"),
        ("99887766^^^HOSPITAL^PI", "AA"),  # no MRN among them: the device decides
        ("{mrn}^^^HOSPITAL^PI~SOMEONE-ELSE^^^HOSPITAL^MR", "AE"),
    ],
)
async def test_every_pid3_repetition_is_read(mllp, device, pid3, answer):
    message = oru("PID-1", device, hr(70, device), mrn="").replace(
        "PID|||", "PID|||" + pid3.format(mrn=device.patient.mrn), 1
    )
    (ack,) = await send(mllp, message)
    assert msa(ack) == (answer, "PID-1")
    assert len(await readings(device)) == (1 if answer == "AA" else 0)
    if answer == "AE":
        assert err(ack)[2] == "patient_mismatch"


async def test_a_refusal_ack_echoes_the_senders_header_and_version(mllp, device):
    message = oru_r01_build(
        control_id="HDR-1",
        observations=[ObservationOut("70", at=timezone.now(), device="NO-SUCH")],
        version="2.5",
    )
    (ack,) = await send(mllp, message)
    msh = ack.segment("MSH")
    assert msa(ack) == ("AE", "HDR-1")
    assert str(msh(5)) == "GATEWAY^^EUI-64" and str(msh(6)) == "DEVICES"
    assert str(msh(3)) == "PATIENT_MONITOR" and str(msh(12)) == "2.5"
    assert str(msh(9)) == "ACK^R01^ACK"


async def test_err2_points_at_obr7_when_the_time_came_from_there(mllp, device):
    future = timezone.now() + timedelta(hours=1)
    (ack,) = await send(
        mllp, oru("OBR7-1", device, ObservationOut("70", device=device.serial), at=future)
    )
    assert msa(ack) == ("AE", "OBR7-1")
    assert str(ack.segment("ERR")(2)) == "OBR^1^7"
    assert "OBR-7" in str(ack.segment("ERR")(8))


async def test_a_monitor_in_demo_mode_is_not_stored_as_patient_data(mllp, device):
    message = oru("DEMO-1", device, hr(70, device, seconds_ago=1), hr(71, device))
    rows = message.split("\r")
    rows[4] = rows[4].replace("|||||F|", "||DEMO|||F|", 1)  # OBX-8 of the second OBX
    (ack,) = await send(mllp, "\r".join(rows))
    assert msa(ack) == ("AA", "DEMO-1")
    assert [r.value for r in await readings(device)] == [70]
    assert "demonstration" in str(ack.segment("ERR")(8))


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"])
async def test_versions_2_3_1_to_2_8_are_taken_and_echoed(mllp, device, version):
    (ack,) = await send(mllp, oru(f"V-{version}", device, hr(70, device), version=version))
    assert msa(ack) == ("AA", f"V-{version}")
    assert str(ack.segment("MSH")(12)) == version


async def test_the_unit_bpm_is_taken(mllp, device):
    (ack,) = await send(mllp, oru("BPM-1", device, hr(70, device, unit="bpm^beats per minute")))
    assert msa(ack) == ("AA", "BPM-1")
    assert [r.value for r in await readings(device)] == [70]


@pytest.mark.parametrize(
    ("msh15", "value", "answer"),
    [("AL", 70, "CA"), ("AL", 900, "CE"), ("ER", 70, "AA"), ("ER", 900, "CE"), ("SU", 70, "CA")],
)
async def test_enhanced_mode_gets_a_commit_ack(mllp, device, msh15, value, answer):
    message = oru("ENH-1", device, hr(value, device)).replace("|||NE|AL|", f"|||{msh15}|NE|", 1)
    (ack,) = await send(mllp, message)
    assert msa(ack) == (answer, "ENH-1")
    assert len(await readings(device)) == (1 if value == 70 else 0)


def _poison(kind: str, device) -> str:
    if kind == "encoding":
        # The same message with the encoding characters @$%* instead of ^~\&.
        text = oru("POISON-1", device, hr(70, device, seconds_ago=5))
        return text.translate(str.maketrans("^~\\&", "@$%*"))
    if kind == "truncated":
        return "MSH|^~\\&|A"
    text = oru("POISON-1", device, hr(70, device, seconds_ago=5))
    rows = text.split("\r")
    stamp = rows[3].split("|")[14]
    rows[3] = rows[3].replace(stamp, stamp[:-5] + "+9999")
    return "\r".join(rows)


@pytest.mark.parametrize(
    ("kind", "answer"), [("encoding", "AA"), ("truncated", "AR"), ("offset", "AE")]
)
async def test_poison_messages_are_answered_and_the_pipeline_goes_on(mllp, device, kind, answer):
    messages = [
        oru("BEFORE-1", device, hr(61, device, seconds_ago=3)),
        _poison(kind, device),
        oru("AFTER-1", device, hr(62, device, seconds_ago=1)),
    ]
    before, poison, after = await send(mllp, *messages)
    assert msa(before) == ("AA", "BEFORE-1") and msa(after) == ("AA", "AFTER-1")
    if kind == "encoding":
        # Unusual but legal encoding characters: read with them, answered with them.
        assert str(poison.segment("MSA")(1)) == "AA"
        assert str(poison.segment("MSH")[2]) == "@$%*"
        assert sorted(r.value for r in await readings(device)) == [61, 62, 70]
        return
    assert str(poison.segment("MSA")(1)) == answer
    assert poison.segment("ERR") is not None
    assert sorted(r.value for r in await readings(device)) == [61, 62]


async def test_a_truncated_message_alone_is_answered_ar_on_an_open_connection(mllp, device):
    host, port = mllp.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(frame("MSH|^~\\&|A") + frame(oru("NEXT-1", device)))
    await writer.drain()
    first = await asyncio.wait_for(frame_read(reader, limit=2**20), 10)
    second = await asyncio.wait_for(frame_read(reader, limit=2**20), 10)
    writer.close()
    assert first is not None and second is not None
    refused = hl7.parse(first.text())
    assert str(refused.segment("MSA")(1)) == "AR"
    assert err(refused)[1] == "E"
    assert msa(hl7.parse(second.text())) == ("AA", "NEXT-1")


async def test_obx11_p_and_c_are_kept_as_the_readings_status(mllp, device):
    from hl7v2.selectors import observation_statuses

    message = oru(
        "STATUS-1",
        device,
        hr(70, device, seconds_ago=3, status="F"),
        hr(71, device, seconds_ago=2, status="P"),
        hr(72, device, seconds_ago=1, status="C"),
    )
    (ack,) = await send(mllp, message)
    assert msa(ack) == ("AA", "STATUS-1")
    stored = await readings(device)
    statuses = await sync_to_async(observation_statuses)(keys=[(device.id, r.seq) for r in stored])
    assert [statuses.get((device.id, r.seq or 0), "final") for r in stored] == [
        "final",
        "preliminary",
        "corrected",
    ]
