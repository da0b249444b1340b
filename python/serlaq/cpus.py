"""How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

`os.cpu_count()` counts the machine; a container limited to 2 CPUs of a 64-core host, or a
process pinned with `taskset`, gets far less, and a thread pool sized to the machine then
oversubscribes the CPUs it has (every parallel region waits for its slowest thread).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP) -> int:
    """The CPUs this process may run on (`sched_getaffinity`), capped by a cgroup v2
    `cpu.max` or v1 `cpu.cfs_quota_us` quota (rounded up); at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_cpu_quota(root: Path = CGROUP) -> float | None:
    """CPUs' worth of time the process's cgroup may use per period, or None when unlimited."""
    own = _own_cgroup(root)
    for folder in (own, root):  # the process's own cgroup first, then the mount's root
        if folder is None:
            continue
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]  # v2: "max 100000" or "150000 100000"
            return None if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            pass
        try:  # v1
            quota_us = int((folder / "cpu" / "cpu.cfs_quota_us").read_text())
            period_us = int((folder / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
        except (OSError, ValueError):
            pass
    return None


def _own_cgroup(root: Path) -> Path | None:
    """This process's cgroup v2 folder (from /proc/self/cgroup), if it is mounted under root."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                folder = root / line[3:].strip().lstrip("/")
                return folder if folder.is_dir() else None
    except OSError:
        pass
    return None
