from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "brains_jobs"]


def env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: the test job types importable, no entry points
    beyond the test plugin's, quick leases."""
    result = dict(os.environ)
    site = ROOT / "tests" / "support" / "site"
    result["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site), result.get("PYTHONPATH", "")])
    result.setdefault("BRAINS_JOBS_PLUGINS_ALLOW", "testplugin")
    result.update(extra)
    return result


def cli(*args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `brains-jobs ARGS` to completion."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env(**extra), cwd=ROOT
    )


class Workers:
    """Worker processes started by a test; whatever is left is killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[str]] = []
        self._logs: list[object] = []

    def start(self, url: str, *args: str, wait: bool = True, **extra: str) -> subprocess.Popen[str]:
        """Start a worker process; with `wait`, return once it runs (signals handled)."""
        path = self.tmp_path / f"worker-{len(self.procs)}.log"
        log = open(path, "w")
        self._logs.append(log)
        proc = subprocess.Popen(
            [*CLI, "worker", "--db", url, "--plugin", "tests.support.jobs", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(**extra),
            cwd=ROOT,
        )
        self.procs.append(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[str]) -> None:
        """Wait until the worker logged that it runs (and so handles signals)."""
        path = self.tmp_path / f"worker-{self.procs.index(proc)}.log"
        wait_until(
            lambda: " started: concurrency" in path.read_text() or proc.poll() is not None,
            60,
            "the worker to start",
        )
        assert proc.poll() is None, path.read_text()

    def stop(self, proc: subprocess.Popen[str], timeout: float = 30) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("worker-*.log")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.close()


def read_ledger(path: Path) -> list[tuple[int, int, int, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        job_id, attempt, pid, what = line.split()[:4]
        rows.append((int(job_id), int(attempt), int(pid), what))
    return rows


def done_counts(path: Path) -> Counter[int]:
    return Counter(job_id for job_id, _, _, what in read_ledger(path) if what == "done")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
