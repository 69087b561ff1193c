"""The simulator's HL7 mode against a real MLLP listener: every reading acknowledged is
stored, for adult and obstetric monitors, and a resend after a reconnect is stored once."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from devtools.hl7_simulator import hl7_demo_devices, simulate_hl7
from devtools.simulator import EpisodeConfig, RunOptions
from hl7v2.listener import MllpListener
from monitoring.models import Reading
from testing.factories import DeviceFactory
from testing.ws import ingest_batchers_closed  # noqa: F401  (autouse for these tests)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


async def test_hl7_mode_streams_readings_that_are_stored(device, obstetric_patient):
    await sync_to_async(DeviceFactory)(patient=obstetric_patient)
    specs = await sync_to_async(hl7_demo_devices)()
    assert {s.profile for s in specs} == {"adult", "obstetric"}
    listener = MllpListener()
    host, port = await listener.start("127.0.0.1", 0)
    try:
        counts = await simulate_hl7(
            specs,
            host=host,
            port=port,
            run=RunOptions(rate=5, duration=1.5, seed=7, episodes=EpisodeConfig(enabled=False)),
        )
    finally:
        await listener.stop()
    assert counts["sent"] > 10 and counts["acked"] == counts["sent"], counts
    assert counts["rejected"] == 0 and counts["unacked"] == 0
    stored = await sync_to_async(lambda: list(Reading.objects.values_list("metric", flat=True)))()
    assert len(stored) == counts["acked"]
    assert {"heart_rate", "fetal_heart_rate"} <= set(stored)


async def test_unacknowledged_messages_are_sent_again_after_a_reconnect(device):
    """The listener is down at first: the monitor keeps its messages, connects once it is up,
    and every reading reaches the database once."""
    import asyncio

    from config.net import free_port

    (spec,) = await sync_to_async(hl7_demo_devices)()
    port = free_port()
    run = asyncio.create_task(
        simulate_hl7(
            [spec],
            host="127.0.0.1",
            port=port,
            run=RunOptions(
                rate=5, duration=1.0, episodes=EpisodeConfig(enabled=False), drain_timeout=20
            ),
        )
    )
    await asyncio.sleep(1.2)  # the producer has finished; nothing was delivered yet
    listener = MllpListener()
    await listener.start("127.0.0.1", port)
    try:
        counts = await run
    finally:
        await listener.stop()
    assert counts["acked"] == counts["sent"] > 0 and counts["connects"] >= 1, counts
    count = await sync_to_async(Reading.objects.filter(device=device).count)()
    assert count == counts["sent"]


def test_the_simulate_command_checks_its_hl7_address():
    from django.core.management import CommandError, call_command

    for args in (["--hl7", "nonsense", "--demo"], ["--hl7", "127.0.0.1:2575"]):
        with pytest.raises(CommandError):
            call_command("simulate", *args, "--duration", "0")
