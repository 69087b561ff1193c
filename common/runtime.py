"""Interpreter settings for a process whose event loop is the latency budget (the web server,
the HL7 listener): its garbage collector and its thread switching.

- **The collector.** A full (oldest-generation) collection walks every object the process
  holds. A server process holds about 250,000 objects after Django, the apps and the URL
  configuration are loaded, and almost none of them is ever garbage; at 2,000 device frames/s
  the objects that live through a flush are promoted fast enough that a full collection ran
  every 5-6 s and stopped the event loop for 150-200 ms each time (every ack and dashboard
  frame of that moment waited). ``gc.freeze()`` once the application is loaded moves what
  exists then out of the collector's sight for good: the full collections that remain walk only
  what the process created since (connections, their tasks), 5-15 ms at the same load.
  Objects frozen are still freed by reference counting; only cycles among them stay.
- **How often it runs.** ``SERVER_GC_THRESHOLDS`` sets the collector's thresholds; the default
  keeps the interpreter's first two (700, 10) and runs a full collection at most every 1,000
  middle ones instead of 10: with 1,000 devices connected a full collection walks about
  215,000 objects (each connection's coroutines, tasks and buffers) for 110-170 ms, and readings
  in flight made one due every 2 s at 12,000 readings/s. What only the collector frees waits
  longer for it: with persistent database connections (``CONN_MAX_AGE``) a finished ASGI
  request's connection is such an object, and a burst of REST requests then held PostgreSQL
  connections until the server refused new ones; the connection pool (``DB_POOL_MAX_SIZE``)
  takes each one back when its request ends.
- **The switch interval.** Blocking calls in worker threads (the batcher's database and Redis
  round trips) release the interpreter lock and must take it back when they return; with the
  default interval (5 ms) a returning thread may wait that long for a busy event loop to let go,
  once per round trip, on the path of every acknowledgement. ``SERVER_SWITCH_INTERVAL``
  (seconds, 0.5 ms by default) bounds that wait.

docs/performance.md has the measurements.
"""

from __future__ import annotations

import gc
import sys

from django.conf import settings


def latency_tune() -> None:
    """Freeze what is loaded now out of the collector's sight, set its thresholds and shorten
    the interpreter's switch interval (idempotent: a second call freezes only what is new)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*settings.SERVER_GC_THRESHOLDS)
    sys.setswitchinterval(settings.SERVER_SWITCH_INTERVAL)
