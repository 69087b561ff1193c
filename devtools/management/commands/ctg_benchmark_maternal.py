"""``manage.py ctg_benchmark_maternal --data <dir>``: maternal capture scored on the FHRMA
false-signal training set (docs/ctg.md, "Maternal capture").

Prints, per scorer (``before``: the product's earlier coincidence condition; ``detector``: the
maternal-capture mask; ``confirmed``: its part the maternal channel confirms; ``excluded``:
what the analysis leaves out; ``alarm``: the technical alarm's condition as the evaluator judges it), the per-second sensitivity and positive predictive value against the
experts' marks, the false flags per hour of true signal and the share of false-signal episodes
of a minute or more flagged, on the whole set and on each half (even and odd records).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from devtools.maternal_benchmark import (
    DEFAULT_SCORERS,
    LABELS_NAME,
    NPZ_NAME,
    SCORERS,
    recordings_load,
    report_lines,
    score,
    window_timing,
)


class Command(BaseCommand):
    help = "Score maternal-capture detection on the FHRMA false-signal training set."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--data",
            type=Path,
            required=True,
            help=f"directory holding {NPZ_NAME} and {LABELS_NAME}",
        )
        parser.add_argument(
            "--scorer",
            action="append",
            choices=sorted(SCORERS),
            help=f"score these (repeat); default: {', '.join(DEFAULT_SCORERS)} (alarm: the "
            "evaluator's condition every 5 s, slow)",
        )
        parser.add_argument(
            "--limit", type=int, default=0, help="score only the first N recordings"
        )
        parser.add_argument("--no-halves", action="store_true", help="skip the two halves")

    def handle(self, *args: Any, **options: Any) -> None:
        data: Path = options["data"]
        for name in (NPZ_NAME, LABELS_NAME):
            if not (data / name).is_file():
                raise CommandError(f"{data / name} is missing")
        recordings = recordings_load(data)
        if options["limit"]:
            recordings = recordings[: options["limit"]]
        parts = {"all": recordings}
        if not options["no_halves"]:
            parts["even records"] = recordings[1::2]  # names count from 1
            parts["odd records"] = recordings[0::2]
        for name in options["scorer"] or DEFAULT_SCORERS:
            for part, recs in parts.items():
                for line in report_lines(name, part, score(recs, SCORERS[name])):
                    self.stdout.write(line)
        times = sorted(window_timing(recordings))
        if times:
            self.stdout.write(
                f"detector on a 2-hour window with the maternal channel, CPU time ({len(times)} "
                f"recordings): median {1000 * statistics.median(times):.1f} ms, "
                f"max {1000 * times[-1]:.1f} ms"
            )
