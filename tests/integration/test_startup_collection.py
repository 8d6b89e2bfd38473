"""The process's garbage collector: the first runtime a process opens runs the process's
first full garbage collection, so that it does not fall into the first calls (later
runtimes do not run another); `tune_gc_for_worker` freezes what exists and raises the
youngest generation's threshold. Each case runs in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from brains_jobs.runtime.collector import WORKER_YOUNG_THRESHOLD

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


def _in_fresh_process(script: str, *args: str) -> Any:
    """What `script`, run in a new interpreter with `args`, prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def _full_collections(tmp_path: Path, collector: str) -> list[int]:
    counts: list[int] = _in_fresh_process(
        SCRIPT, f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", collector
    )
    return counts


def test_the_first_runtime_of_a_process_runs_a_full_collection_and_only_it(
    tmp_path: Path,
) -> None:
    first, second = _full_collections(tmp_path, "on")
    assert first >= 1
    assert second == 0


def test_a_process_that_switched_the_collector_off_is_left_alone(tmp_path: Path) -> None:
    assert _full_collections(tmp_path, "off") == [0, 0]


TUNE = """
import gc, json, sys
import brains_jobs as bj

before = list(gc.get_threshold())
if sys.argv[1] == "off":
    gc.disable()
elif sys.argv[1] == "high":
    gc.set_threshold(50_000, 20, 30)
else:
    gc.set_threshold(700, 20, 30)
bj.tune_gc_for_worker()
print(json.dumps([list(gc.get_threshold()), gc.get_freeze_count(), gc.isenabled(), before]))
"""


def _tuned(setting: str) -> list[object]:
    result: list[object] = _in_fresh_process(TUNE, setting)
    return result


def test_tuning_for_a_worker_freezes_and_raises_only_the_youngest_threshold() -> None:
    threshold, frozen, enabled, _ = _tuned("default")
    assert threshold == [WORKER_YOUNG_THRESHOLD, 20, 30]
    assert isinstance(frozen, int) and frozen > 1000  # the imported modules
    assert enabled is True


def test_tuning_keeps_a_higher_threshold_the_application_set() -> None:
    threshold, frozen, _, _ = _tuned("high")
    assert threshold == [50_000, 20, 30]
    assert isinstance(frozen, int) and frozen > 1000


def test_tuning_leaves_a_collector_that_was_switched_off_alone() -> None:
    threshold, frozen, enabled, before = _tuned("off")
    assert threshold == before
    assert frozen == 0
    assert enabled is False
