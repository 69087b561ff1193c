"""A Celery worker SIGKILLed in the middle of sending an alarm e-mail (main and pool process,
while the SMTP server holds the message's DATA): the e-mail still arrives, once, within a
bounded time, and not an hour later. Real processes: a Celery worker, real Redis as the broker,
a real SMTP server (aiosmtpd), the run's test database.

Two ways it comes back: the delivery sweep, driven here explicitly, queues the delivery stuck
"sending" again; and without any sweep the broker hands the killed task out again after its
visibility timeout (acks_late). The test timings are short (claims stale after 1 s, visibility
5 s); production defaults (60 s, sweep every 30 s, 360 s) bound the delay the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from config.net import free_port
from testing.processes import CeleryWorker, django_run
from testing.smtp import SmtpRecorder

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


class HoldingSmtp(SmtpRecorder):
    """Holds the first message's DATA until released, then refuses it (its sender is dead by
    then); every later message is accepted and kept."""

    def __init__(self) -> None:
        super().__init__(port=free_port())
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.holding.is_set():
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 120)
            return "451 4.3.0 Sender went away"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[HoldingSmtp]:
    recorder = HoldingSmtp()
    controller = Controller(recorder, hostname=recorder.host, port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        recorder.release.set()
        controller.stop()


RAISE = """
from testing.factories import bradycardia_raised_for_a_nurse
result = bradycardia_raised_for_a_nurse(email_prefix="kill", bpm=38, held=12)
"""

SWEEP = """
from notifications.tasks import alerts_delivery_sweep
result = alerts_delivery_sweep()
"""

ROWS = """
from notifications.models import AlertNotification
result = [[r.attempts, r.sent_at is not None, r.sending_since is None]
          for r in AlertNotification.objects.filter(event_id=EVENT)]
"""


def kill_mid_send(env: dict[str, str], log: Path, smtp: HoldingSmtp) -> tuple[dict, float]:
    """Raise a high-priority alarm, let a worker start e-mailing it, SIGKILL the worker (main
    and pool) while the SMTP server holds the message; the alarm's data and the kill time."""
    worker = CeleryWorker(env, log, name="mail-kill").wait_ready()
    try:
        data = django_run(env, RAISE)
        assert smtp.holding.wait(60), worker.logs()
        os.killpg(worker.process.pid, signal.SIGKILL)  # main process and its pool child
        worker.process.wait(10)
        killed_at = time.monotonic()
    finally:
        worker.stop()
    smtp.release.set()
    assert smtp.messages == []  # the held message was never accepted
    return data, killed_at


def wait_for_mail(smtp: HoldingSmtp, address: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not smtp.to(address) and time.monotonic() < deadline:
        time.sleep(0.1)


def assert_delivered_once(env: dict[str, str], smtp: HoldingSmtp, data: dict) -> None:
    assert len(smtp.to(data["nurse"])) == 1
    rows = django_run(env, ROWS.replace("EVENT", str(data["event"])))
    assert rows == [[2, True, True]]  # the killed attempt and the one that sent it


@pytest.fixture
def kill_env(live_env, clean_alarm_state) -> dict[str, str]:
    return {
        **live_env,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "NOTIFICATION_STUCK_SECONDS": "1",
        "DEVICE_OFFLINE_SECONDS": "600",
    }


def test_the_sweep_resends_an_alarm_email_cut_off_by_a_killed_worker(kill_env, smtp, tmp_path):
    env = {**kill_env, "EMAIL_URL": smtp.url}
    data, killed_at = kill_mid_send(env, tmp_path / "worker-1.log", smtp)
    # The broker would hand the task out again only after the visibility timeout (360 s);
    # the sweep does not wait for that.
    replacement = CeleryWorker(env, tmp_path / "worker-2.log", name="mail-after").wait_ready()
    try:
        queued = 0
        while not queued and time.monotonic() - killed_at < 30:
            queued = django_run(env, SWEEP)  # what beat runs every ALERT_DELIVERY_SWEEP_SECONDS
        assert queued == 1, replacement.logs()
        wait_for_mail(smtp, data["nurse"], 30)
        delay = time.monotonic() - killed_at
        assert smtp.to(data["nurse"]), replacement.logs()
        assert delay < 45
        assert django_run(env, SWEEP) == 0
    finally:
        replacement.stop()
    assert_delivered_once(env, smtp, data)


def test_the_broker_redelivers_the_killed_task_after_its_visibility_timeout(
    kill_env, smtp, tmp_path
):
    env = {**kill_env, "EMAIL_URL": smtp.url, "CELERY_VISIBILITY_TIMEOUT": "5"}
    data, killed_at = kill_mid_send(env, tmp_path / "worker-1.log", smtp)
    replacement = CeleryWorker(env, tmp_path / "worker-2.log", name="mail-after").wait_ready()
    try:
        # No sweep: visibility 5 s, then the next scan for unacked tasks (every 10 s).
        wait_for_mail(smtp, data["nurse"], 40)
        assert smtp.to(data["nurse"]), replacement.logs()
        assert time.monotonic() - killed_at < 45
    finally:
        replacement.stop()
    assert_delivered_once(env, smtp, data)
