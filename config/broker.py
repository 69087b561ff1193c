"""The Celery broker's Redis transport, with one repair: a worker survives a Redis restart.

Celery 5.7's consumer, on losing the broker, first ``collect()``s the connection (which
closes the transport and clears the transport's ``client``) and then ``close()``s it. If the
worker holds unacknowledged messages (a task running, or one waiting for its countdown) and
Redis was unreachable at the first close, the second close tries to put those messages back
("Restoring 1 unacknowledged message(s)"): kombu's Redis channel builds a new connection pool
from ``transport.client``, which is None by then, and the ``AttributeError`` ('NoneType' object
has no attribute 'hostname') is not one of the connection errors the consumer ignores, so the
worker exits with "Unrecoverable error".

Here the channel answers that state with a connection error instead, which the consumer
ignores, and it reconnects as it does after any broker outage. The messages it could not put
back stay in Redis's unacked index if Redis kept them (handed out again after the visibility
timeout); if Redis restarted empty they are gone either way, and the deliveries outbox in the
database hands out what is due (``notifications.tasks.alerts_delivery_sweep``).

``config.tests.test_broker`` fails on an upgrade that changes the code this leans on.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:  # the transport was closed under this channel
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        # celery-types' kombu stubs omit this private method (see the module docstring).
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
