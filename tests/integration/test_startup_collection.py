"""The first runtime a process opens runs the process's first full garbage collection,
so that it does not fall into the first calls; later runtimes do not run another.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, gc, json, sys
import brains_jobs as bj

full = []

def count(phase, info):
    if phase == "stop" and info["generation"] == 2:
        full.append(1)

gc.callbacks.append(count)
if sys.argv[2] == "off":
    gc.disable()

async def main():
    counts = []
    for _ in range(2):
        before = len(full)
        async with bj.Runtime(sys.argv[1], load_entrypoints=False):
            counts.append(len(full) - before)
    print(json.dumps(counts))

asyncio.run(main())
"""


def _full_collections(tmp_path: Path, collector: str) -> list[int]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, collector],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts: list[int] = json.loads(done.stdout)
    return counts


def test_the_first_runtime_of_a_process_runs_a_full_collection_and_only_it(
    tmp_path: Path,
) -> None:
    first, second = _full_collections(tmp_path, "on")
    assert first >= 1
    assert second == 0


def test_a_process_that_switched_the_collector_off_is_left_alone(tmp_path: Path) -> None:
    assert _full_collections(tmp_path, "off") == [0, 0]
