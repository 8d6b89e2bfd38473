"""The worker: claim loop and lanes (`worker`), one attempt (`attempt`), the result
writer (`results`), leases and self-fencing (`leases`), the registry entry
(`presence`) and the stall watch (`stalls`).
"""

from .worker import Worker as Worker

__all__ = ["Worker"]
