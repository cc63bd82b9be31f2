"""Benchmarks: kernel throughput (cell-updates per second) and peak memory.

Speed is measured here, never asserted in tests. The kernel benchmark runs the full
nonlinear step (continuity with maxima, momentum with advection and Manning friction,
boundaries, positivity limiter) on a synthetic 10 m coast: a shelf rising from 60 m to
dry land, with a wave arriving, so wet, dry and moving-shoreline cells are all present.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from tsunami.boundaries import Boundaries, Open, Wall
from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel


@dataclass
class KernelBenchmark:
    size: int
    dtype: str
    threads: int
    steps_per_sample: int
    samples: list[float]  # cell-updates per second, one per timed block
    compile_s: float
    peak_memory_mb: float

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def report(self) -> str:
        spread = f"{min(self.samples) / 1e6:.1f}-{max(self.samples) / 1e6:.1f}"
        return (f"nonlinear kernel, {self.size} x {self.size} cells, {self.dtype}, "
                f"{self.threads} threads\n"
                f"  cell-updates per second (median of {len(self.samples)} x "
                f"{self.steps_per_sample} steps): {self.median / 1e6:.1f} M  (range {spread} M)\n"
                f"  first-call compile/cache load: {self.compile_s:.1f} s\n"
                f"  peak memory (process): {self.peak_memory_mb:.0f} MB")


def coastal_test_model(size: int = 1000, dtype: type = np.float32,
                       spacing: float = 10.0) -> ShallowWaterModel:
    """A synthetic coast: shelf 60 m deep shoaling to land across the grid, a bay and a
    headland, Manning n = 0.025, a 2 m wave hump offshore."""
    grid = Grid(nx=size, ny=size, x0=0.0, y0=0.0, dx=spacing, dy=spacing, name="bench coast")
    x, y = np.meshgrid(grid.x / (size * spacing), grid.y / (size * spacing))
    shore = 0.8 + 0.08 * np.sin(2 * np.pi * y * 2)
    depth = 60.0 * (shore - x) / shore - 5.0 * np.exp(-((x - 0.6) ** 2 + (y - 0.3) ** 2) / 0.003)
    model = ShallowWaterModel(grid, depth, manning=0.025, dtype=dtype, dry_depth=1e-3,
                              boundaries=Boundaries(west=Open(), east=Wall(), south=Open(),
                                                    north=Open()))
    hump = 2.0 * np.exp(-((x - 0.45) ** 2 + (y - 0.5) ** 2) / 0.01)
    model.set(eta=np.where(depth > 0, hump, 0.0))
    return model


def kernel(size: int = 1000, dtype: str = "float32", samples: int = 5,
           steps: int = 20) -> KernelBenchmark:
    """Median cell-updates/s of the full step after compilation; the wave first travels
    for a while so the shoreline is moving during the timed blocks."""
    model = coastal_test_model(size, np.dtype(dtype).type)
    start = time.perf_counter()
    model.step()
    compile_s = time.perf_counter() - start
    for _ in range(3 * steps):
        model.step()
    rates = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(steps):
            model.step()
        rates.append(size * size * steps / (time.perf_counter() - start))
    model.check_health()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return KernelBenchmark(size, dtype, numba.get_num_threads(), steps, rates, compile_s, peak)


@dataclass
class DemoBenchmark:
    """Wall time per stage and per grid of a full region + scenario run."""

    region: str
    scenario: str
    simulated_s: float
    stages: dict[str, float]  # setup, simulation, output
    levels: list[dict]  # grid, cells, dt, steps, wall_s, rate
    peak_memory_mb: float
    threads: int

    @property
    def total_s(self) -> float:
        return sum(self.stages.values())

    def report(self) -> str:
        updates = sum(lv["cells"] * lv["steps"] for lv in self.levels)
        lines = [f"{self.scenario} on {self.region}: {self.simulated_s:.0f} s simulated, "
                 f"{self.threads} threads",
                 "  stages (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.stages.items())
                 + f"; total {self.total_s:.1f}",
                 f"  {'grid':<12} {'cells':>9} {'dt (s)':>8} {'steps':>7} {'wall (s)':>9} "
                 f"{'M cell-upd/s':>13}"]
        for lv in self.levels:
            rate = lv["cells"] * lv["steps"] / max(lv["wall_s"], 1e-9) / 1e6
            lines.append(f"  {lv['grid']:<12} {lv['cells']:>9} {lv['dt']:>8.4f} {lv['steps']:>7} "
                         f"{lv['wall_s']:>9.1f} {rate:>13.0f}")
        sim = self.stages["simulation"]
        lines.append(f"  all grids: {updates / 1e9:.2f} G cell-updates in {sim:.1f} s = "
                     f"{updates / sim / 1e6:.0f} M cell-updates/s")
        lines.append(f"  peak memory (process): {self.peak_memory_mb:.0f} MB")
        return "\n".join(lines)


def demo(region_path, scenario_path, out_dir=None) -> DemoBenchmark:
    """Run a region + scenario end to end (including writing outputs) and time it."""
    import tempfile
    from pathlib import Path

    from tsunami.region import Region
    from tsunami.runner import run, write_outputs
    from tsunami.scenario import Scenario

    start = time.perf_counter()
    region = Region.load(region_path)
    scenario = Scenario.load(scenario_path)
    load_s = time.perf_counter() - start
    result = run(region, scenario)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(result, Path(out_dir) if out_dir else Path(tmp))
    output_s = time.perf_counter() - start
    model = result.model
    # A nest times each grid; a single grid is the whole simulation.
    walls = getattr(model, "wall_time", None) or {model.grid.name:
                                                  result.timings["simulation_s"]}
    levels = [{"grid": m.grid.name, "cells": m.grid.size, "dt": m.dt, "steps": m.iteration,
               "wall_s": walls.get(m.grid.name, float("nan"))} for m in model.models]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return DemoBenchmark(region.name, scenario.name, scenario.duration,
                         {"setup": load_s + result.timings["setup_s"],
                          "simulation": result.timings["simulation_s"], "output": output_s},
                         levels, peak, numba.get_num_threads())


# -- time to accuracy ---------------------------------------------------------------------
@dataclass
class AccuracyBenchmark:
    """Wall time against error on the synthetic coast (shelf, slope, land with a valley,
    Manning n; :mod:`tsunami.validation.synthetic_coast`), every scheme at every spacing,
    against the finest fv2 run. What counts for a forecast is the time to a given
    accuracy, not cell-updates per second."""

    runs: list  # synthetic_coast.CoastRun, coarse to fine per scheme
    reference: object  # the finest fv2 run
    target: float  # relative error of inundated area and runup judged "accurate"
    duration: float  # simulated s
    threads: int

    def errors(self, run) -> tuple[float, float]:
        """Relative error of inundated area and runup against the reference."""
        return (run.area_m2 / self.reference.area_m2 - 1.0,
                run.runup_m / self.reference.runup_m - 1.0)

    def time_to_target(self, scheme: str):
        """The cheapest run of ``scheme`` (wall time) within the target, or None."""
        within = [r for r in self.runs if r.scheme == scheme and r is not self.reference
                  and max(map(abs, self.errors(r))) <= self.target]
        return min(within, key=lambda r: r.wall_s, default=None)

    def report(self) -> str:
        ref = self.reference
        lines = [f"synthetic coast, {ref.model.grid.ny * ref.spacing:g} x "
                 f"{ref.model.grid.nx * ref.spacing:g} m, {self.duration:g} s simulated, float32, "
                 f"{self.threads} threads; reference fv2 {ref.spacing:g} m: "
                 f"{ref.area_m2 / 1e4:.3f} ha flooded, runup {ref.runup_m:.3f} m",
                 f"  {'scheme':<9} {'spacing':>7} {'cells':>8} {'steps':>7} {'wall s':>8} "
                 f"{'CPU s':>8} {'area':>8} {'runup':>8}"]
        for r in self.runs:
            area, runup = ("(reference)", "") if r is ref else (
                f"{100 * e:+.1f} %" for e in self.errors(r))
            lines.append(f"  {r.scheme:<9} {r.spacing:>5g} m {r.model.grid.size:>8} "
                         f"{r.steps:>7} {r.wall_s:>8.2f} {r.cpu_s:>8.2f} {area:>8} {runup:>8}")
        for scheme in dict.fromkeys(r.scheme for r in self.runs):
            best = self.time_to_target(scheme)
            lines.append(f"  time to within {100 * self.target:g} % (area and runup), "
                         f"{scheme}: " + ("not reached at any spacing run" if best is None else
                                          f"{best.wall_s:.2f} s wall at {best.spacing:g} m"))
        return "\n".join(lines)


def accuracy(spacings: tuple[float, ...] = (20.0, 10.0, 5.0, 2.5),
             schemes: tuple[str, ...] = ("leapfrog", "fv2"), target: float = 0.02,
             progress=None) -> AccuracyBenchmark:
    """Run the synthetic coast with every scheme at every spacing (issue 11's time to
    accuracy); the reference is the finest fv2 run."""
    from tsunami.validation.synthetic_coast import DURATION, run_coast

    if "fv2" not in schemes:
        raise ValueError("the reference is the finest fv2 run: include fv2 in schemes")
    runs = []
    for scheme in schemes:
        run_coast(max(spacings), scheme, duration=10.0)  # loads the kernels: not timed
        for spacing in sorted(spacings, reverse=True):
            runs.append(run_coast(spacing, scheme))
            if progress is not None:
                r = runs[-1]
                progress(f"{scheme} {spacing:g} m: {r.steps} steps, {r.wall_s:.1f} s wall")
    reference = min((r for r in runs if r.scheme == "fv2"), key=lambda r: r.spacing)
    return AccuracyBenchmark(runs, reference, target, DURATION, numba.get_num_threads())


# -- contention ---------------------------------------------------------------------------
CONTENTION_SIZE = 346  # 346 x 346 = 120,000 cells, the run of the "Under load" report
BUSY_LOOP = "while True: pass"


@dataclass
class ContentionBenchmark:
    """Wall and CPU time of the same run alone, beside a second run and beside ``load``
    busy loops, measured in fresh processes, the three cases interleaved per repeat."""

    size: int
    steps: int
    load: int
    setup: dict  # threads.state() and the core budget of a worker
    alone: list[dict] = field(default_factory=list)  # {"wall", "cpu", "threads"} per run
    pair: list[dict] = field(default_factory=list)  # both runs of each pair
    loaded: list[dict] = field(default_factory=list)
    host_load: list[float] = field(default_factory=list)  # 1-min load average per case

    def slowdowns(self, case: list[dict]) -> list[float]:
        """Wall time over the alone run's of the same repeat (runs per repeat in order)."""
        per = len(case) // len(self.alone)
        return [run["wall"] / self.alone[i // per]["wall"] for i, run in enumerate(case)]

    def report(self) -> str:
        s = self.setup
        lines = [f"contention: {self.size} x {self.size} cells ({self.size ** 2 / 1e3:.0f} k), "
                 f"{self.steps} steps, float32, {len(self.alone)} repeats interleaved",
                 f"  threading layer {s['layer']}, pool {s['pool_threads']} threads, "
                 f"{s['cores']} cores, core budget {s['budget']}",
                 f"  {'case':<26} {'wall s: median [range]':<24} {'CPU s':>6} {'threads':>8}  "
                 "slowdown vs alone"]
        # Fair share: beside a second run, half the host; beside busy loops, the share the
        # OS gives the run's threads among the loops.
        threads = statistics.median(r["threads"] for r in self.alone)
        cases = (("alone", self.alone, None), ("beside a second run", self.pair, 2.0),
                 (f"beside {self.load} busy loops", self.loaded, (threads + self.load) / threads))
        for name, case, fair in cases:
            if not case:
                continue
            walls = [r["wall"] for r in case]
            wall = f"{statistics.median(walls):.2f} [{min(walls):.2f}-{max(walls):.2f}]"
            line = (f"  {name:<26} {wall:<24} {statistics.median(r['cpu'] for r in case):>6.2f} "
                    f"{statistics.median(r['threads'] for r in case):>8.1f}  ")
            if fair is not None:
                ratios = self.slowdowns(case)
                line += (f"{statistics.median(ratios):.1f}x [{min(ratios):.1f}-{max(ratios):.1f}]"
                         f" (fair share: {fair:.1f}x)")
            lines.append(line.rstrip())
        lines.append(f"  host 1-minute load average after each case (these runs included): "
                     f"{min(self.host_load):.1f}-{max(self.host_load):.1f}")
        return "\n".join(lines)


def contention(size: int = CONTENTION_SIZE, steps: int = 2000, repeats: int = 3,
               load: int = 4, progress=None) -> ContentionBenchmark:
    """Time one run alone, beside a second identical run and beside ``load`` busy-loop
    processes. Runs are fresh processes that compile (or load the cache) and take a few
    steps first, then start stepping together on a signal: only the stepping is timed,
    through :class:`~tsunami.simulation.Simulation`, so the host's core budget applies."""
    import json
    import os
    import subprocess
    import sys

    def start_runs(count):
        code = f"from tsunami.bench import _contention_run; _contention_run({size}, {steps})"
        runs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for _ in range(count)]
        for run in runs:
            if run.stdout.readline().strip() != "ready":
                raise RuntimeError(f"contention benchmark run failed: exit {run.wait()}")
        return runs

    def finish(runs, busy):
        for run in runs:
            run.stdin.write("go\n")
            run.stdin.flush()
        results = [json.loads(run.stdout.readline()) for run in runs]
        for run in runs:
            run.wait()
        for process in busy:
            process.kill()
            process.wait()
        return results

    bench = None
    for repeat in range(repeats):
        for case, count, loops in (("alone", 1, 0), ("pair", 2, 0), ("loaded", 1, load)):
            if case == "loaded" and not load:
                continue
            runs = start_runs(count)
            busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(loops)]
            try:
                results = finish(runs, busy)
            finally:
                for process in runs + busy:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            if bench is None:
                bench = ContentionBenchmark(size, steps, load, results[0]["setup"])
            getattr(bench, case).extend(results)
            bench.host_load.append(os.getloadavg()[0])
            if progress:
                progress(f"repeat {repeat + 1}/{repeats}, {case}: "
                         + ", ".join(f"{r['wall']:.2f} s" for r in results))
    return bench


def _contention_run(size: int, steps: int) -> None:
    """One run of :func:`contention`, in its own process (protocol on stdin/stdout)."""
    import json
    import sys

    from tsunami import threads
    from tsunami.simulation import Simulation

    model = coastal_test_model(size)
    for _ in range(5):
        model.step()
    seen = []

    def count_threads(m):
        seen.append(numba.get_num_threads())

    simulation = Simulation(model, stop_time=model.time + (steps - 0.5) * model.dt,
                            callbacks=[count_threads])
    budget = simulation.cores
    print("ready", flush=True)
    sys.stdin.readline()
    wall, cpu = time.perf_counter(), time.process_time()
    simulation.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    setup = threads.state() | {"budget": f"{budget.cores} tokens" if budget.enabled else "off"}
    print(json.dumps({"wall": wall, "cpu": cpu, "threads": statistics.mean(seen),
                      "setup": setup}), flush=True)
