"""The broker's Redis transport (config/broker.py): Celery uses it for a Redis broker, and a
channel whose transport was closed under it answers with a connection error (which the
worker's consumer ignores) instead of an AttributeError (which stopped the worker). The live
proof is notifications/tests/test_redis_restart_live.py; this one fails fast on a kombu
upgrade that changes what the repair leans on."""

from __future__ import annotations

import os
from typing import cast

import pytest
import redis
from kombu import Connection
from kombu.transport import redis as kombu_redis

from config.broker import Channel, Transport
from config.celery import app


def test_a_redis_broker_goes_through_the_repaired_transport():
    connection = app.connection_for_write()
    try:
        assert connection.transport_cls == "config.broker:Transport"
        assert isinstance(connection.transport, Transport)
    finally:
        connection.release()


def test_a_channel_whose_transport_was_closed_answers_with_a_connection_error():
    assert callable(getattr(kombu_redis.Channel, "_connparams", None))  # what it overrides
    connection = Connection(os.environ["REDIS_URL"], transport=Transport)
    channel = cast(Channel, connection.default_channel)
    assert channel._connparams()["port"]  # an open transport: the usual parameters
    # What the worker's consumer leaves when Redis was unreachable at its first close: the
    # channel still open, its transport's client cleared by ``collect()``.
    channel.connection.client = None
    with pytest.raises(redis.exceptions.ConnectionError):
        channel._connparams()
    channel._disconnect_pools()  # type: ignore[attr-defined]  # kombu stubs: as in close()
    with pytest.raises(redis.exceptions.ConnectionError):
        _ = channel.pool  # the pool the restore asks for: refused, not an AttributeError
