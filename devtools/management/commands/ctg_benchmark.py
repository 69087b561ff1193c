"""``manage.py ctg_benchmark --data DIR``: the CTG analysis against obstetricians on the
CTU-UHB recordings under DIR (see docs/ctg.md, "Measured on real recordings").

Examples::

    manage.py ctg_benchmark --data /work/shared/data
    manage.py ctg_benchmark --data /work/shared/data --limit 40 --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from devtools.ctg_benchmark import ctu_benchmark, ctu_missing, ctu_report


class Command(BaseCommand):
    help = "Score the CTG analysis against the experts' FIGO classes of CTU-UHB recordings."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--data", required=True, help="folder holding the ctu-uhb-even files")
        parser.add_argument("--limit", type=int, default=None, help="only the first N records")
        parser.add_argument("--json", action="store_true", help="print the scores as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        data = Path(options["data"])
        missing = ctu_missing(data)
        if missing:
            raise CommandError("missing: " + ", ".join(str(m) for m in missing))
        scores = ctu_benchmark(data, limit=options["limit"])
        if options["json"]:
            self.stdout.write(json.dumps(scores, indent=2))
        else:
            self.stdout.write(ctu_report(scores))
