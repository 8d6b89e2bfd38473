"""The process's cyclic garbage collector: when it runs its first full pass, and how a
process that only runs a worker keeps it from walking the jobs in flight.

A worker holds hundreds of claimed jobs at once (records, leases, contexts, outcomes),
all young. CPython's youngest generation is collected after every 700 new container
objects, and each pass walks every young object still alive: the batch in flight is
walked again and again, and the collections take about a fifteenth of a busy worker's
CPU. A threshold of 10,000 leaves the passes to the garbage they are for; what is freed
by reference counting (nearly all of a job's objects) never waits for them.
"""

from __future__ import annotations

import gc

#: The youngest generation's threshold `tune_gc_for_worker` sets (CPython's is 700).
WORKER_YOUNG_THRESHOLD = 10_000

_collected = False  # the first runtime of this process ran a full garbage collection


def first_full_collection() -> None:
    """Run the process's first full garbage collection when its first runtime opens.

    CPython runs one soon after the imports: once the objects kept since its last full
    pass outnumber a quarter of those that pass kept, which the imports of SQLAlchemy and
    pydantic soon do. Left alone, it falls into the first calls that keep many objects
    a moment (a bulk enqueue, a worker's first batches): a pause of 20-50 ms on a 2-core
    machine, paid here at start instead. The next full pass is then due only once a
    quarter of the whole heap is new. Nothing is done when the application switched the
    collector off.
    """
    global _collected
    if not _collected and gc.isenabled():
        _collected = True
        gc.collect()


def tune_gc_for_worker(young: int = WORKER_YOUNG_THRESHOLD) -> None:
    """Set up the collector of a process whose work, from now on, is a worker's.

    Freezes what exists now (modules, plugins, the open runtime: `gc.freeze()`), so that
    full passes no longer walk it, and raises the youngest generation's threshold to
    `young` (see the module docstring), unless it is higher already. The other
    generations' thresholds are kept. `brains-jobs worker` calls it once its runtime is
    open; call it the same way before `Runtime.run_worker()` in a process of your own
    that does nothing else. A process that switched the collector off is left alone.
    """
    if not gc.isenabled():
        return
    gc.freeze()
    threshold = gc.get_threshold()
    if threshold[0] < young:
        gc.set_threshold(young, *threshold[1:])
