"""The interpreter settings of the latency-bound processes (common/runtime.py)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from common import runtime

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc, json, sys
import config.asgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "switch": sys.getswitchinterval(),
    "thresholds": gc.get_threshold(),
}))
"""


def test_loading_the_asgi_application_freezes_it_and_shortens_the_switch_interval():
    """What the web server loads is frozen out of the collector's sight (there are hundreds of
    thousands of objects; a fresh interpreter freezes none), and the switch interval and the
    collector's thresholds are the settings'."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "SERVER_SWITCH_INTERVAL": "0.00025",
            "SERVER_GC_THRESHOLDS": "30000,10,50",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["frozen"] > 50_000, probe
    assert probe["switch"] == 0.00025, probe
    assert probe["thresholds"] == [30_000, 10, 50], probe


def test_the_hl7_listener_tunes_its_interpreter_before_it_serves(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(
        "hl7v2.management.commands.hl7_listen.latency_tune", lambda: calls.append("tune")
    )

    def serve(coroutine):
        coroutine.close()
        calls.append("serve")

    monkeypatch.setattr("hl7v2.management.commands.hl7_listen.asyncio.run", serve)
    call_command("hl7_listen", "--port", "0")
    assert calls == ["tune", "serve"]


def test_latency_tune_sets_the_switch_interval_and_the_collector(settings, monkeypatch):
    settings.SERVER_SWITCH_INTERVAL = 0.002
    settings.SERVER_GC_THRESHOLDS = (40_000, 15, 90)
    before, thresholds = sys.getswitchinterval(), gc.get_threshold()
    frozen: list[bool] = []
    monkeypatch.setattr(runtime.gc, "freeze", lambda: frozen.append(True))
    try:
        runtime.latency_tune()
        assert sys.getswitchinterval() == 0.002
        assert frozen == [True]
        assert gc.get_threshold() == (40_000, 15, 90)
    finally:
        sys.setswitchinterval(before)
        gc.set_threshold(*thresholds)
