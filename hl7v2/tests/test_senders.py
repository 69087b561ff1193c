"""Senders that are who they say: enrolment over REST, the listener taking messages only from
enrolled senders and only for their place, refusals audited, and TLS with a client
certificate per gateway (a throwaway CA made in the test)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import hl7
import pytest
from asgiref.sync import sync_to_async
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from audit.models import AuditRecord
from hl7v2.listener import MllpListener
from hl7v2.mllp import frame, frame_read
from hl7v2.models import Hl7Sender
from hl7v2.tests.test_listener import err, hr, msa, oru, readings, send
from testing.factories import DeviceFactory, PlaceFactory

pytestmark = pytest.mark.timeout(60)


# --- Enrolment over REST ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_enrols_lists_and_removes_senders(admin_api, place):
    url = f"/api/places/{place.id}/hl7-senders/"
    created = admin_api.post(
        url,
        {"name": "ICU gateway", "address": "10.1.2.0/24", "sending_application": "EGATEWAY",
         "sending_facility": None},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["id"] and body["place"] == place.id and body["address"] == "10.1.2.0/24"
    assert body["sending_application"] == "EGATEWAY" and body["sending_facility"] is None
    listed = admin_api.get(url).json()
    assert [s["id"] for s in listed] == [body["id"]]
    assert admin_api.delete(f"{url}{body['id']}/").status_code == 204
    assert admin_api.get(url).json() == []
    assert admin_api.delete(f"{url}{body['id']}/").status_code == 404


@pytest.mark.django_db
def test_enrolment_is_for_admins_and_validated(admin_api, nurse_api, place):
    url = f"/api/places/{place.id}/hl7-senders/"
    refused = nurse_api.post(url, {"name": "x", "address": "10.0.0.1"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    bad = admin_api.post(url, {"name": "x", "address": "not-an-ip"}, format="json")
    assert bad.status_code == 400
    assert "address" in bad.json()["error"]["details"]
    assert admin_api.get("/api/places/999999/hl7-senders/").status_code == 404


# --- The listener -----------------------------------------------------------------------------


async def _enrol(place, **fields) -> Hl7Sender:
    values = {"name": "gateway", "address": "127.0.0.1", **fields}
    return await sync_to_async(Hl7Sender.objects.create)(place=place, **values)


async def _audit_rows() -> list[AuditRecord]:
    """The audit records of the messages refused (each message has one record)."""
    rows = AuditRecord.objects.filter(channel="hl7", outcome="refused")
    return await sync_to_async(lambda: list(rows))()


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_sender_is_refused_and_audited(settings, mllp, device):
    settings.HL7_SENDERS_REQUIRED = True
    (refused,) = await send(mllp, oru("WHO-1", device, hr(75, device)))
    assert msa(refused) == ("AR", "WHO-1")
    assert err(refused)[2] == "unknown_sender"
    assert await readings(device) == []
    (record,) = await _audit_rows()
    assert (record.action, record.outcome, record.actor_type) == ("receive", "refused", "hl7")
    assert record.address == "127.0.0.1" and record.resource_id == "WHO-1"
    assert record.detail is not None and record.detail["code"] == "unknown_sender"


@pytest.mark.django_db(transaction=True)
async def test_an_enrolled_sender_is_taken_for_its_own_place_only(settings, mllp, device):
    settings.HL7_SENDERS_REQUIRED = True
    await _enrol(device.place, sending_application="GATEWAY")
    (taken,) = await send(mllp, oru("OWN-1", device, hr(75, device)))
    assert msa(taken) == ("AA", "OWN-1")
    # A device behind another place (the spoof of the issue: naming a serial it does not own).
    stranger = await sync_to_async(DeviceFactory)(place=await sync_to_async(PlaceFactory)())
    (refused,) = await send(mllp, oru("SPOOF-1", stranger, hr(75, stranger)))
    assert msa(refused) == ("AR", "SPOOF-1")
    assert err(refused)[2] == "sender_not_allowed"
    assert await readings(stranger) == []
    (record,) = await _audit_rows()
    assert record.detail is not None and record.detail["code"] == "sender_not_allowed"
    assert record.patient_id == stranger.patient_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "fields",
    [
        {"sending_application": "OTHER-APP"},
        {"sending_facility": "OTHER-FACILITY"},
        {"address": "10.9.9.0/24"},
        {"tls_subject": "gw-icu-1"},  # a certificate it did not present
    ],
)
async def test_a_sender_must_match_every_enrolled_field(settings, mllp, device, fields):
    settings.HL7_SENDERS_REQUIRED = True
    await _enrol(device.place, **fields)
    (refused,) = await send(mllp, oru("MATCH-1", device, hr(75, device)))
    assert msa(refused) == ("AR", "MATCH-1")
    assert err(refused)[2] == "unknown_sender"


@pytest.mark.django_db(transaction=True)
async def test_without_enforcement_anyone_is_taken(settings, mllp, device):
    settings.HL7_SENDERS_REQUIRED = False
    (taken,) = await send(mllp, oru("DEV-1", device, hr(75, device)))
    assert msa(taken) == ("AA", "DEV-1")


# --- TLS with a client certificate per gateway ------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (
        (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1])
        if issuer
        else (name, key)
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key=None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture
def pki(tmp_path):
    """A throwaway CA, the listener's certificate and two gateways' client certificates."""
    import ipaddress

    ca_key = _key()
    ca = _cert("Test Hospital HL7 CA", ca_key, None, ca=True)
    _write(tmp_path / "ca.pem", ca)
    server_key = _key()
    server = _cert(
        "hl7.test", server_key, ("Test Hospital HL7 CA", ca_key),
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )  # fmt: skip
    _write(tmp_path / "server.pem", server, server_key)
    for gateway in ("gw-icu-1", "gw-icu-2"):
        key = _key()
        _write(
            tmp_path / f"{gateway}.pem", _cert(gateway, key, ("Test Hospital HL7 CA", ca_key)), key
        )
    rogue_key = _key()
    rogue_ca = _cert("Rogue CA", rogue_key, None, ca=True)
    key = _key()
    _write(tmp_path / "rogue.pem", _cert("gw-icu-1", key, ("Rogue CA", rogue_key)), key)
    del rogue_ca
    return tmp_path


def _client_context(pki: Path, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    return context


async def _tls_send(address, context: ssl.SSLContext, message: str) -> hl7.Message:
    reader, writer = await asyncio.open_connection(*address, ssl=context)
    try:
        writer.write(frame(message))
        await writer.drain()
        found = await asyncio.wait_for(frame_read(reader, limit=2**20), 10)
        if found is None:  # TLS 1.3: a refused client certificate ends the stream
            raise ConnectionError("closed without an answer")
        return hl7.parse(found.text())
    finally:
        writer.close()


@pytest.mark.django_db(transaction=True)
async def test_tls_takes_the_gateway_whose_certificate_is_enrolled(settings, pki, device):
    settings.HL7_SENDERS_REQUIRED = True
    settings.HL7_MLLP_TLS_CERT = str(pki / "server.pem")
    settings.HL7_MLLP_TLS_KEY = str(pki / "server.key")
    settings.HL7_MLLP_TLS_CLIENT_CA = str(pki / "ca.pem")
    await _enrol(device.place, tls_subject="gw-icu-1")
    listener = MllpListener()
    address = await listener.start("127.0.0.1", 0)
    try:
        taken = await _tls_send(address, _client_context(pki, "gw-icu-1"), oru("TLS-1", device))
        other = await _tls_send(address, _client_context(pki, "gw-icu-2"), oru("TLS-2", device))
        # A certificate from another CA does not get through the handshake at all.
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _tls_send(address, _client_context(pki, "rogue"), oru("TLS-3", device))
        # Nor does a client without a certificate.
        plain = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _tls_send(address, plain, oru("TLS-4", device))
    finally:
        await listener.stop()
    assert msa(taken) == ("AA", "TLS-1")
    assert msa(other) == ("AR", "TLS-2") and err(other)[2] == "unknown_sender"
    assert [r.value for r in await readings(device)] == [72]
    (record,) = await _audit_rows()
    assert record.detail is not None and record.detail["tls_subject"] == "gw-icu-2"
