"""Print the fault suite's results as a Markdown table.

    python tests/faults/report.py [RESULTS_FILE]

Each scenario of `tests/faults` appends one JSON line to the results file
(BRAINS_JOBS_FAULTS_RESULTS, or `brains_jobs_faults/results.jsonl` in the temporary
directory); the file is emptied when a run of the suite begins. This script needs
nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS_ENV = "BRAINS_JOBS_FAULTS_RESULTS"

COLUMNS = [
    ("scenario", "scenario"),
    ("store", "store"),
    ("jobs", "jobs"),
    ("lost", "lost"),
    ("double_effects", "double effects"),
    ("left_running", "left running"),
    ("rescues", "rescues"),
    ("recover_s", "time to recover (s)"),
    ("notes", "notes"),
    ("verdict", "verdict"),
]


def results_path() -> Path:
    """Where the scenarios write their rows."""
    given = os.environ.get(RESULTS_ENV)
    if given:
        return Path(given)
    return Path(tempfile.gettempdir()) / "brains_jobs_faults" / "results.jsonl"


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, with a line of totals under it."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |")
    if rows:
        failed = [r for r in rows if r.get("verdict") != "ok"]
        seconds = sum(float(r.get("seconds") or 0) for r in rows)
        modes = sorted({str(r.get("mode")) for r in rows})
        lines.append("")
        lines.append(
            f"{len(rows)} scenario run(s) ({', '.join(modes)}), {len(failed)} not ok,"
            f" {seconds:.0f} s of scenarios."
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else results_path()
    rows = read_rows(path)
    if not rows:
        print(f"no results in {path}", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
