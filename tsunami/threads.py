"""How the Numba kernels use the CPU: threading layer, wait policy and core count.

Every parallel kernel call (``prange``) is a fork/join: the calling thread hands out the
rows and waits at a barrier until every worker has finished its share. A time step calls
four to five such kernels, so a run makes thousands of barriers a second. Numba's default
layer on Linux is GNU OpenMP, whose idle threads spin at a barrier before sleeping and
which gives each thread a fixed half of the rows. On a busy machine one thread of the
pair is preempted for a scheduler slice (milliseconds) while the other spins, once per
kernel call: a 120,000-cell run took 3.1 s alone and about 90 s beside a load of 4 (see
"Under load" in README.md).

So, before Numba starts its threads (on the first parallel call), :func:`configure`:

* makes Intel TBB available to Numba (the ``tbb`` wheel puts ``libtbb`` in the
  environment's ``lib/``, where the dynamic loader does not look), so that Numba's
  default choice, TBB first, finds it. TBB schedules the rows as stealable tasks: a
  worker that is preempted only delays the small range it holds, a thread that finds no
  work sleeps instead of spinning, and the caller runs all the work itself if no worker is
  free;
* sets ``OMP_WAIT_POLICY=PASSIVE`` (and ``KMP_BLOCKTIME=0`` for LLVM/Intel OpenMP) for the
  case that OpenMP is used after all (no TBB wheel for the platform, or the user's
  choice): waiting threads then sleep at once instead of spinning.

An explicit ``NUMBA_THREADING_LAYER``, ``OMP_WAIT_POLICY`` or ``KMP_BLOCKTIME`` in the
environment is left as the user set it; ``TSUNAMI_THREADING=numba`` leaves all of Numba's
defaults alone (for comparisons: ``tsunami bench --contention`` under it measures the
set-up this module replaces). ``NUMBA_NUM_THREADS`` (the pool size) is Numba's;
how many of the pool's threads a run uses is decided per chunk of steps by the host's core
budget (:mod:`tsunami.cores`).
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from importlib import metadata
from pathlib import Path

# Environment defaults applied when the user has not set them.
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
# The TBB runtime Numba's tbbpool links against, by platform.
_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}

_configured = False


def configure() -> None:
    """Set the threading defaults; idempotent. Call before the first parallel kernel
    runs (``tsunami.kernels`` does so on import). Too late once Numba's threads run: then
    it changes nothing (:func:`state` tells which layer is in use)."""
    global _configured
    if _configured or os.environ.get("TSUNAMI_THREADING") == "numba":
        return
    _configured = True
    from numba.np.ufunc import parallel

    if parallel._is_initialized:
        return
    for name, value in WAIT_POLICY.items():
        os.environ.setdefault(name, value)
    _load_tbb()


def _load_tbb() -> Path | None:
    """Load the TBB runtime of the ``tbb`` wheel, if installed, with global symbols so
    that Numba's ``tbbpool`` links to it; return its path."""
    name = _TBB_LIBRARY.get(sys.platform)
    try:
        files = metadata.distribution("tbb").files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if name and entry.name == name:
            path = Path(entry.locate()).resolve()
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                return None
            return path
    return None


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup (container)
    CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return min(cores, max(1, math.ceil(quota))) if quota else cores


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 ``cpu.max``, v1 ``cpu.cfs_*``)."""
    root = Path("/sys/fs/cgroup")
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None


def state() -> dict[str, str | int]:
    """The threading set-up in use: layer (once Numba's threads run), pool size, cores,
    wait policy. For benchmark reports and diagnostics."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not started"
    return {"layer": layer, "pool_threads": numba.config.NUMBA_NUM_THREADS,
            "cores": available_cores(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
