"""``tsunami sweep --bench``: scenarios per hour on a LocalCluster of 1 and 2 workers.

Runs the first scenarios of a sweep file (evenly spread over its set), shortened to a
given duration, on a fresh LocalCluster per worker count, and reports the wall time,
scenarios per hour, CPU seconds per scenario and the peak memory of a worker. Cluster
start-up is timed apart; the first scenario on each worker includes loading the region's
DEMs and the compiled kernels, as in any real sweep.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsunami.cluster import dask_client
from tsunami.sweep.config import Sweep
from tsunami.sweep.run import run_sweep

#: Simulated time (s) per scenario unless told otherwise.
DURATION = 900.0


@dataclass
class SweepBenchmark:
    sweep: str
    region: str
    scenarios: int
    duration: float
    rows: list[dict] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"sweep {self.sweep} on {self.region}: {self.scenarios} scenarios of "
                 f"{self.duration:.0f} s simulated each",
                 f"  {'workers':>7} {'numba thr':>9} {'start (s)':>9} {'wall (s)':>9} "
                 f"{'scen/hour':>9} {'CPU s/scen':>10} {'peak MB/worker':>14} {'failed':>6}"]
        for r in self.rows:
            lines.append(f"  {r['workers']:>7} {r['numba_threads']:>9} {r['startup_s']:>9.1f} "
                         f"{r['wall_s']:>9.1f} {r['per_hour']:>9.1f} {r['cpu_s']:>10.1f} "
                         f"{r['peak_memory_mb']:>14.0f} {r['failed']:>6}")
        lines.append("  (wall time from submission to the last result; scenarios per hour = "
                     "scenarios / wall; CPU s = process CPU time of the worker per scenario)")
        return "\n".join(lines)


def run(sweep_path: str | Path, scenarios: int = 4, duration: float = DURATION,
        workers: tuple[int, ...] = (1, 2), threads: int | None = None) -> SweepBenchmark:
    """Benchmark ``scenarios`` of a sweep file on LocalClusters of each ``workers`` count,
    with ``threads`` Numba threads per worker (default cores // workers)."""
    sweep = Sweep.load(sweep_path, duration=duration)
    sweep = sweep.subset(slice(None, None, max(1, len(sweep.scenarios) // scenarios)))
    sweep = sweep.subset(slice(scenarios))
    from tsunami.region import Region

    region = Region.load(sweep.region_path)
    result = SweepBenchmark(sweep.name, region.name, len(sweep.scenarios), duration)
    for n in workers:
        print(f"{n} worker(s): {len(sweep.scenarios)} scenarios of {duration:g} s ...",
              file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            with dask_client(n, dashboard_address=":0", threads=threads) as client:
                startup = time.perf_counter() - start
                report = run_sweep(sweep, tmp, client, region=region, progress=False,
                                   threads=threads)
        result.rows.append({
            "workers": n, "startup_s": startup,
            "numba_threads": max((o.numba_threads for o in report.done), default=0),
            "wall_s": report.wall_s, "per_hour": report.ran / report.wall_s * 3600.0,
            "cpu_s": report.cpu_s_per_scenario, "peak_memory_mb": report.peak_memory_mb,
            "failed": len(report.failed)})
    return result
