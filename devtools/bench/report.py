"""What the command prints besides the figures' JSON: the machine they come from, and a
two-column table of them."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psutil


def machine() -> dict[str, Any]:
    """The machine the figures come from."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def render_table(result: dict[str, Any]) -> str:
    """A two-column table of the figures that matter; nested values flattened."""
    rows: list[tuple[str, str]] = []

    def add(prefix: str, value: Any) -> None:
        if (
            isinstance(value, dict)
            and value
            and all(not isinstance(v, dict | list) for v in value.values())
        ):
            rows.append((prefix, "  ".join(f"{k} {v}" for k, v in value.items())))
        elif isinstance(value, dict):
            for key, inner in value.items():
                add(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            rows.append((prefix, f"{len(value)} entries (see --json)"))
        else:
            rows.append((prefix, str(value)))

    add("", result)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
