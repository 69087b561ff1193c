"""Redis restarted empty while an alarm e-mail is being retried (SMTP down), under a real
Celery worker (with beat) whose broker is that Redis: the worker stays up and reconnects; the
webhook and the HL7 alert report go out at once, not behind the e-mail's retries; once SMTP is
back the e-mail goes out, once, although the broker lost the message of its next attempt (the
deliveries outbox in the database hands it out again). Real processes and servers: Redis, the
worker, an SMTP server (aiosmtpd), an HTTP webhook receiver, an MLLP alert manager.
"""

from __future__ import annotations

import re
import time

import pytest
from aiosmtpd.controller import Controller

from config.net import free_port
from testing.hl7 import AlertManagerStub
from testing.hl7 import alert_manager as alert_manager
from testing.processes import CeleryWorker, django_run
from testing.smtp import SmtpRecorder
from testing.webhooks import WebhookServer

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

RAISE = """
from testing.factories import bradycardia_raised_for_a_nurse
result = bradycardia_raised_for_a_nurse(
    email_prefix="restart", bpm=35, held=10, webhook_url="WEBHOOK", webhook_secret="k",
    alert_manager_host="127.0.0.1", alert_manager_port=MLLP,
)
"""

ROWS = """
from notifications.models import AlertNotification
result = sorted(
    [r.channel, r.state] for r in AlertNotification.objects.filter(event_id=EVENT)
)
"""


def held_countdown(log: bytes) -> bool:
    """The worker received the message of a delivery's next attempt (queued with a
    countdown, so the worker holds it unacknowledged until it is due)."""
    queued = re.search(rb"delivery \d+: next attempt queued", log)
    received = rb"notifications\.tasks\.notification_deliver\[[^\]]+\] received"
    return queued is not None and re.search(received, log[queued.end() :]) is not None


def wait(predicate, timeout: float, what: str, worker: CeleryWorker) -> float:
    """Poll until ``predicate()``; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if worker.process.poll() is not None:
            raise AssertionError(f"the worker exited while waiting for {what}\n{worker.logs(6000)}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}\n{worker.logs(6000)}")
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_redis_restart_while_an_email_is_retried_leaves_the_worker_up_and_delivers_each_once(
    live_env,
    stoppable_redis,
    webhook_server: WebhookServer,
    alert_manager: AlertManagerStub,
    tmp_path,
):
    smtp = SmtpRecorder(port=free_port())  # not listening yet: SMTP is down
    env = {
        **live_env,
        "REDIS_URL": stoppable_redis.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_URL": smtp.url,
        "DEVICE_OFFLINE_SECONDS": "600",
        "ALERT_DELIVERY_SWEEP_SECONDS": "1",
        "NOTIFICATION_SWEEP_GRACE_SECONDS": "1",
        # The e-mail's next attempt waits in the worker (held, unacknowledged) when Redis goes.
        "NOTIFICATION_RETRY_FIRST_SECONDS": "15",
        "NOTIFICATION_RETRY_MAX_SECONDS": "15",
        "NOTIFICATION_MAX_ATTEMPTS": "1000",
    }
    worker = CeleryWorker(env, tmp_path / "worker.log", name="redis-restart", beat=True)
    worker.wait_ready()
    controller = None
    try:
        raise_code = RAISE.replace("WEBHOOK", webhook_server.url).replace(
            "MLLP", str(alert_manager.port)
        )
        data = django_run(env, raise_code)
        # SMTP is down: the webhook and the page do not wait for the e-mail.
        wait(lambda: webhook_server.requests and alert_manager.received, 15, "webhook+page", worker)
        worker.wait_for(rb"failed, attempt 1", 30)  # the e-mail is being retried
        # ... and the worker holds the message of its next attempt (its countdown runs).
        wait(lambda: held_countdown(worker.output()), 30, "the next attempt held", worker)

        stoppable_redis.stop()
        worker.wait_for(rb"Connection to broker lost", 30)
        stoppable_redis.start()  # empty: the message of the e-mail's next attempt is gone
        wait(lambda: worker.output().count(b"Connected to ") >= 2, 60, "reconnect", worker)

        controller = Controller(smtp, hostname=smtp.host, port=smtp.port)
        controller.start()
        wait(lambda: smtp.to(data["nurse"]), 60, "the e-mail", worker)

        assert worker.process.poll() is None, worker.logs(6000)
        assert b"Unrecoverable error" not in worker.output()
        rows = django_run(env, ROWS.replace("EVENT", str(data["event"])))
        assert rows == [["email", "sent"], ["hl7", "sent"], ["webhook", "sent"]]
        assert len(smtp.to(data["nurse"])) == 1
        assert len(webhook_server.requests) == 1
        assert len(alert_manager.received) == 1
    finally:
        worker.stop()
        if controller is not None:
            controller.stop()
