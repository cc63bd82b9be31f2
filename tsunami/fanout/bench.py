"""``tsunami bench --fan-out``: how a forecast with many towns scales with Dask workers.

The region (by default ``grids/okushiri1993/coast_towns.toml``: Okushiri Island's coast
cut into 14 towns of the same size, each a 30 m grid holding a 10 m grid) runs with
:func:`~tsunami.fanout.run_fanout` on a fresh LocalCluster of 1, 2, ... workers. For each
worker count it reports the cluster start-up, the regional stage, the towns' stage and
the whole, each town's wall and CPU seconds and the peak memory of the workers. The
projection for N single-core workers is

    T(N) = T_region + ceil(towns / N) x T_town

with T_town the mean wall time of a town on a one-thread worker (the largest worker
count measured), i.e. no transfer or scheduling cost: it is a lower bound.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COAST_TOWNS = ROOT / "grids" / "okushiri1993" / "coast_towns.toml"
HNO = ROOT / "scenarios" / "okushiri1993_hno.toml"


@dataclass
class FanoutMeasurement:
    """One worker count: seconds of wall time unless named CPU; memory in MB."""

    workers: int
    numba_threads: int
    cluster_start_s: float
    regional_s: float
    towns_s: float
    wall_s: float
    town_wall_s: dict[str, float]
    town_cpu_s: dict[str, float]
    worker_peak_mb: float
    regional_peak_mb: float
    regional_cpu_s: float
    town_setup_s: dict[str, float]


@dataclass
class FanoutScaling:
    region: str
    scenario: str
    simulated_s: float
    towns: int
    cells_per_town: int
    cells_regional: int
    runs: list[FanoutMeasurement]

    def town_seconds(self) -> float:
        """Mean wall seconds of one town on a one-thread worker (the run with the most
        workers)."""
        run = self.runs[-1]
        return sum(run.town_wall_s.values()) / len(run.town_wall_s)

    def projected_s(self, workers: int, towns: int | None = None) -> float:
        """Lower-bound wall time of the simulation with ``workers`` one-core workers."""
        run = self.runs[-1]
        return run.regional_s + math.ceil((towns or self.towns) / workers) * self.town_seconds()

    def report(self) -> str:
        lines = [f"fan-out of {self.towns} towns ({self.cells_per_town:,} cells each; "
                 f"regional grids {self.cells_regional:,} cells) on {self.region}, "
                 f"{self.scenario}, {self.simulated_s:.0f} s simulated",
                 f"  {'workers':>7} {'threads':>7} {'start':>6} {'regional':>8} {'towns':>7} "
                 f"{'total':>7} {'town wall':>10} {'town CPU':>9} {'worker peak':>11}",
                 f"  {'':>7} {'each':>7} {'(s)':>6} {'(s)':>8} {'(s)':>7} {'(s)':>7} "
                 f"{'mean (s)':>10} {'mean (s)':>9} {'(MB)':>11}"]
        for r in self.runs:
            n = len(r.town_wall_s)
            lines.append(
                f"  {r.workers:>7} {r.numba_threads:>7} {r.cluster_start_s:>6.1f} "
                f"{r.regional_s:>8.1f} {r.towns_s:>7.1f} {r.wall_s:>7.1f} "
                f"{sum(r.town_wall_s.values()) / n:>10.1f} "
                f"{sum(r.town_cpu_s.values()) / n:>9.1f} {r.worker_peak_mb:>11.0f}")
        if len(self.runs) > 1:
            first, last = self.runs[0], self.runs[-1]
            lines.append(f"  towns' stage speed-up {first.workers} -> {last.workers} workers: "
                         f"{first.towns_s / last.towns_s:.2f}x; whole run "
                         f"{first.wall_s / last.wall_s:.2f}x")
        last = self.runs[-1]
        setup = sum(last.town_setup_s.values()) / len(last.town_setup_s)
        lines.append(f"  regional stage: {last.regional_cpu_s:.1f} s CPU, peak memory "
                     f"{last.regional_peak_mb:.0f} MB; a town builds its grids in {setup:.1f} s "
                     "(mean, in its town wall)")
        lines.append("  projected (T_region + ceil(towns / N) x T_town, one-core workers, "
                     "no transfer cost):")
        for n in sorted({1, 2, 4, 8, self.towns}):
            lines.append(f"    N = {n:>3}: {self.projected_s(n):7.1f} s")
        return "\n".join(lines)


def fanout_scaling(region_path: Path = COAST_TOWNS, scenario_path: Path = HNO,
                   workers: tuple[int, ...] = (1, 2), duration: float = 600.0,
                   progress: Callable[[str], None] = print) -> FanoutScaling:
    """Run ``scenario_path`` (``duration`` s simulated) on ``region_path`` with each
    town as a Dask task, once per worker count, each on a fresh LocalCluster."""
    import os

    from tsunami.cluster import dask_client
    from tsunami.fanout.run import run_fanout, town_of_grids, town_subtrees
    from tsunami.region import Region
    from tsunami.scenario import Scenario

    region = Region.load(region_path)
    scenario = dataclasses.replace(Scenario.load(scenario_path), duration=duration)
    subtrees = town_subtrees(region)
    cells = {g.name: math.prod(region.grid(g.name).shape) for g in region.grids}
    town_grids = set(town_of_grids(region, subtrees))
    runs = []
    for count in workers:
        progress(f"{count} worker(s): starting a LocalCluster ...")
        start = time.perf_counter()
        with dask_client(count, dashboard_address=None) as client:
            started = time.perf_counter() - start
            progress(f"{count} worker(s): running {len(subtrees)} towns ...")
            _, report = run_fanout(region, scenario, client)
        towns = report.towns.values()
        runs.append(FanoutMeasurement(
            workers=count, numba_threads=max(1, (os.cpu_count() or 1) // count),
            cluster_start_s=started, regional_s=report.regional_s,
            towns_s=report.wall_s - report.regional_s, wall_s=report.wall_s,
            town_wall_s={t.town: t.simulation_s for t in towns},
            town_cpu_s={t.town: t.cpu_s for t in towns},
            worker_peak_mb=max(t.peak_memory_mb for t in towns),
            regional_peak_mb=report.regional_peak_mb, regional_cpu_s=report.regional_cpu_s,
            town_setup_s={t.town: t.setup_s for t in towns}))
        progress(f"{count} worker(s): {report.wall_s:.1f} s")
    per_town = sum(cells[n] for n in town_grids) // len(subtrees)
    return FanoutScaling(region.name, scenario.name, duration, len(subtrees), per_town,
                         sum(v for k, v in cells.items() if k not in town_grids), runs)

