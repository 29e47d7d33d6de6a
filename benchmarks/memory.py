"""Peak memory of the current process, for benchmarks that compare it between runs."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB since it started its program.

    Linux keeps `ru_maxrss` across exec, so a child spawned by a big parent would report
    the parent's peak; VmHWM belongs to the new program only. Elsewhere, ru_maxrss.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
