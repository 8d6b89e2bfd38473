"""PostgreSQL's CPU time on this machine, read from `/proc` (for `pg_scale.py` and
`pg_cost.py`, which must run on the database's machine).
"""

from __future__ import annotations

import os
from pathlib import Path


def postgres_cpu() -> float | None:
    """CPU seconds used so far by this machine's PostgreSQL processes, those that ended
    included (None: no PostgreSQL here).
    """
    total, seen = 0, False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            # utime, stime, and cutime, cstime: the postmaster's reaped backends
            total += sum(int(f) for f in fields[11:15])
            seen = True
    return total / os.sysconf("SC_CLK_TCK") if seen else None
