"""A synthetic test coast for inundation convergence: shelf, slope, land with a valley.

The coast (Cartesian, metres; x offshore to onshore, y alongshore):

* a 20 m deep shelf out to x = 200 m, a 1:40 slope to the shoreline at x = 1,000 m, land
  rising at 1:40 beyond (15 m at the east wall, x = 1,600 m), 600 m alongshore;
* a valley cut into the land on the centre line (up to 4 m deep, 120 m wide), which
  funnels the flow and carries the runup maximum;
* a shoreline undulating alongshore (+-40 m) so the problem is truly two-dimensional;
* Manning n = 0.025 at sea and 0.035 on land;
* a 2.5 m elevation pulse (sin^2, 150 s) forced through the west side; walls elsewhere.

The same coast is run at any spacing; what a forecast publishes is measured: the
inundated area (initially dry cells whose maximum depth exceeded 1 cm), the runup (the
highest surface over wetted land) and the maximum inundation depth. Their convergence
with resolution compares the schemes (``tsunami validate synthetic_coast``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsunami.boundaries import Boundaries, IncidentWave, Wall
from tsunami.diagnostics import runup
from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel
from tsunami.simulation import Simulation
from tsunami.validation import CaseResult, Metric, relative

SHORE = 1000.0  # m, mean shoreline
FLOODED = 0.01  # m: a cell counts as inundated above this maximum depth
DURATION = 360.0  # s: the pulse arrives, runs up and drains back


def ground(x: np.ndarray, y: np.ndarray, width: float) -> np.ndarray:
    """Elevation (m, positive up) of the coast at (x, y); ``width`` is the alongshore
    extent (the valley runs along its centre line)."""
    shoreline = SHORE + 40.0 * np.sin(2 * np.pi * y / width)
    slope = (x - shoreline) / 40.0
    elevation = np.maximum(slope, -20.0)
    valley = 4.0 * np.exp(-((y - 0.5 * width) / 60.0) ** 2) * np.clip(
        (x - shoreline + 100.0) / 100.0, 0.0, 1.0)
    return elevation - valley


def incident_pulse(amplitude: float = 2.5, period: float = 150.0) -> IncidentWave:
    t = np.linspace(0.0, 2 * period, 401)
    return IncidentWave(t, np.where(t < period, amplitude * np.sin(np.pi * t / period) ** 2,
                                    0.0))


@dataclass
class CoastRun:
    spacing: float
    scheme: str
    area_m2: float
    runup_m: float
    max_depth_m: float
    steps: int
    cpu_s: float
    wall_s: float
    model: ShallowWaterModel


def run_coast(spacing: float, scheme: str = "fv2", width: float = 600.0,
              length: float = 1600.0, duration: float = DURATION, dtype: type = np.float32,
              **options) -> CoastRun:
    """Run the coast on a uniform grid of ``spacing`` m with ``scheme``; ``options`` go to
    :class:`~tsunami.model.ShallowWaterModel` (dry_depth, manning, max_speed, ...)."""
    grid = Grid(nx=round(length / spacing), ny=round(width / spacing), x0=0.0, y0=0.0,
                dx=spacing, dy=spacing, name=f"coast {spacing:g} m")
    x, y = np.meshgrid(grid.x, grid.y)
    elevation = ground(x, y, width)
    manning = options.pop("manning", np.where(elevation > 0, 0.035, 0.025))
    model = ShallowWaterModel(
        grid, -elevation, manning=manning, dtype=dtype, scheme=scheme,
        boundaries=Boundaries(west=incident_pulse(), east=Wall(), south=Wall(), north=Wall()),
        **options)
    cpu, wall = time.process_time(), time.perf_counter()
    Simulation(model, duration).run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return CoastRun(spacing, scheme, *inundation(model), model.iteration, cpu, wall, model)


def inundation(model: ShallowWaterModel) -> tuple[float, float, float]:
    """Inundated area (m2), runup (m) and maximum inundation depth (m) of a run."""
    land = ~model.initially_wet
    eta_max = model.eta_max.astype(np.float64)
    depth = np.where(land & np.isfinite(eta_max), eta_max + model.h, 0.0)
    flooded = depth > FLOODED
    area = float(flooded.sum() * model.grid.dx * model.grid.dy)
    return area, runup(model, min_depth=FLOODED), float(depth.max())


def convergence(spacings: tuple[float, ...] = (20.0, 10.0, 5.0, 2.5),
                schemes: tuple[str, ...] = ("leapfrog", "fv2"), **kwargs) -> list[CoastRun]:
    """Runs of every scheme at every spacing (coarse to fine)."""
    return [run_coast(s, scheme, **kwargs) for scheme in schemes for s in spacings]


def _rows(case: str, runs: list[CoastRun], reference: CoastRun, bound_at: float,
          bound: float) -> list[Metric]:
    metrics = []
    for r in runs:
        if r is reference:
            continue
        judged = r.scheme == "fv2" and r.spacing == bound_at
        for name, value, ref, unit in (
                ("inundated area", r.area_m2 / 1e4, reference.area_m2 / 1e4, "ha"),
                ("runup", r.runup_m, reference.runup_m, "m"),
                ("max inundation depth", r.max_depth_m, reference.max_depth_m, "m")):
            b = bound if judged and name != "max inundation depth" else None
            metrics.append(relative(case, f"{r.scheme} {r.spacing:g} m: {name}", value, ref, b,
                                    unit))
        metrics.append(Metric(case, f"{r.scheme} {r.spacing:g} m: CPU time", r.cpu_s, 0.0,
                              r.cpu_s, None, "absolute", "s"))
    return metrics


def synthetic_coast(outdir: Path | None = None,
                    spacings: tuple[float, ...] = (20.0, 10.0, 5.0, 2.5)) -> CaseResult:
    """Convergence of inundated area, runup and maximum depth with resolution, old
    (leapfrog) and new (fv2) scheme, against the finest fv2 run. Judged: fv2 at 10 m
    within 2 % of it in area and runup. Reported: every other figure and the CPU time of
    each run (time to accuracy)."""
    start = time.perf_counter()
    runs = convergence(spacings)
    reference = min((r for r in runs if r.scheme == "fv2"), key=lambda r: r.spacing)
    result = CaseResult("synthetic_coast", _rows("synthetic_coast", runs, reference, 10.0,
                                                   0.02))
    if outdir is not None:
        result.figures.append(_plot(outdir / "synthetic_coast.png", runs, reference))
    result.wall_time = time.perf_counter() - start
    return result


def _plot(path: Path, runs: list[CoastRun], reference: CoastRun) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    for scheme, marker in (("leapfrog", "o"), ("fv2", "s")):
        sel = [r for r in runs if r.scheme == scheme and r is not reference]
        err = [max(abs(r.area_m2 / reference.area_m2 - 1), abs(r.runup_m / reference.runup_m - 1))
               for r in sel]
        ax1.loglog([r.spacing for r in sel], err, marker + "-", label=scheme)
        ax2.loglog([r.cpu_s for r in sel], err, marker + "-", label=scheme)
        for r, e in zip(sel, err, strict=True):
            ax2.annotate(f"{r.spacing:g} m", (r.cpu_s, e), fontsize=8)
    for ax in (ax1, ax2):
        ax.axhline(0.02, color="k", ls=":", lw=0.8)
        ax.set_ylabel("max(area error, runup error) vs finest fv2")
        ax.legend()
    ax1.set_xlabel("grid spacing (m)")
    ax2.set_xlabel("CPU time (s)")
    ax1.set_title("convergence on the synthetic coast")
    ax2.set_title("time to accuracy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
