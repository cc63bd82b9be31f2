"""NTHMP BP7: the Monai valley laboratory experiment (Matsuyama & Tanaka 2001).

A 1:400 model of the coast around the Monai valley of Okushiri Island in a 5.488 x
3.402 m basin (Central Research Institute of Electric Power Industry, Japan), hit by the
leading-depression long wave of the 1993 tsunami, measured at the wavemaker (x = 0) and
forced through the west side here; the other sides are walls. The benchmark's own grid
(1.4 cm) is the model grid; the bed is smooth (no friction). Judged: the peak surface
and its timing at gauges 5, 7 and 9 in front of the valley, and the maximum runup at the
valley head against the six laboratory runs. Data, provenance and licence:
data/bp07/SOURCE.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsunami.boundaries import Boundaries, IncidentWave, Wall
from tsunami.diagnostics import runup, waterline_runup
from tsunami.gauges import Gauge, GaugeRecorder
from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel
from tsunami.simulation import Simulation
from tsunami.validation import DATA, CaseResult, Metric, relative

GAUGES = {"ch5": (4.521, 1.196), "ch7": (4.521, 1.696), "ch9": (4.521, 2.196)}
VALLEY_HEAD = (5.1575, 1.88)  # m, the highest runup point of the laboratory runs
VALLEY_BOX = (4.95, 5.40, 1.70, 2.10)  # west, east, south, north: where it is searched
WETTED = 1e-3  # m: ground counts as reached by the flood above this maximum depth
DURATION = 25.0  # s: the first wave and its runup (peaks at about 16-17 s)
PEAK_BOUND = 0.10  # relative error of a gauge peak
TIME_BOUND = 0.5  # s, error of the time of a gauge peak
RUNUP_BOUND = 0.10  # relative error of the valley-head runup


def bathymetry() -> tuple[np.ndarray, float]:
    """Still depth (m, positive down; rows south to north) and spacing (m)."""
    data = np.load(DATA / "bp07" / "bathymetry.npz")
    return data["depth_m"].astype(np.float64), float(data["spacing"])


def incident_wave() -> IncidentWave:
    table = np.loadtxt(DATA / "bp07" / "incident_wave.txt", skiprows=1)
    return IncidentWave(table[:, 0], table[:, 1])


def measured_gauges() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Laboratory records: time (s) and surface (m) at ch5, ch7, ch9."""
    table = np.loadtxt(DATA / "bp07" / "gauges_ch5_ch7_ch9.csv", delimiter=",", skiprows=1)
    return table[:, 0], {name: table[:, k + 1] / 100.0 for k, name in enumerate(GAUGES)}


def measured_runup() -> float:
    """Mean maximum runup (m) at the valley head over the six laboratory runs."""
    for line in (DATA / "bp07" / "observed_runup.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 8 and abs(float(parts[0]) - VALLEY_HEAD[0]) < 1e-6:
            return float(np.mean([float(p) for p in parts[2:]]))
    raise ValueError("observed_runup.txt has no valley-head row")


@dataclass
class MonaiRun:
    time: np.ndarray
    gauges: dict[str, np.ndarray]
    runup: float  # m, waterline: the highest ground reached in VALLEY_BOX (judged)
    surface_runup: float  # m, the highest surface over reached ground there (reported)
    cpu_s: float
    model: ShallowWaterModel


def run_monai(scheme: str = "fv2", coarsen: int = 1, duration: float = DURATION,
              dtype: type = np.float32) -> MonaiRun:
    """Run the experiment on the benchmark grid, or on one ``coarsen`` times coarser
    (block means of the depth)."""
    depth, spacing = bathymetry()
    if coarsen > 1:
        ny, nx = (s // coarsen * coarsen for s in depth.shape)
        depth = depth[:ny, :nx].reshape(ny // coarsen, coarsen, nx // coarsen,
                                        coarsen).mean(axis=(1, 3))
        spacing *= coarsen
    ny, nx = depth.shape
    # Data points are cell centres, the first at the origin.
    grid = Grid(nx=nx, ny=ny, x0=-0.5 * spacing, y0=-0.5 * spacing, dx=spacing, dy=spacing,
                name=f"Monai valley {100 * spacing:g} cm")
    model = ShallowWaterModel(
        grid, depth, manning=0.0, dtype=dtype, scheme=scheme, dry_depth=1e-4, max_speed=1.5,
        arrival_threshold=0.002,
        boundaries=Boundaries(west=incident_wave(), east=Wall(), south=Wall(), north=Wall()))
    recorder = GaugeRecorder(model, [Gauge(n, x, y) for n, (x, y) in GAUGES.items()],
                             interval=0.05)
    cpu = time.process_time()
    Simulation(model, duration, callbacks=[recorder]).run()
    cpu = time.process_time() - cpu
    ds = recorder.to_dataset()
    series = {n: np.nan_to_num(ds.eta.sel(gauge=n).values) for n in GAUGES}
    valley = valley_mask(model.grid)
    return MonaiRun(ds.time.values, series, waterline_runup(model, WETTED, valley),
                    runup(model, WETTED, valley), cpu, model)


def valley_mask(grid: Grid) -> np.ndarray:
    """Cells in VALLEY_BOX, around the valley head."""
    west, east, south, north = VALLEY_BOX
    x, y = np.meshgrid(grid.x, grid.y)
    return (x >= west) & (x <= east) & (y >= south) & (y <= north)


def _metrics(case: str, run: MonaiRun, judged: bool) -> list[Metric]:
    t_lab, lab = measured_gauges()
    rows = []
    scheme = run.model.scheme
    for name in GAUGES:
        window = t_lab <= run.time[-1]
        k_lab, k_mod = np.argmax(lab[name][window]), np.argmax(run.gauges[name])
        rows.append(relative(case, f"{scheme}: {name} peak", 100 * run.gauges[name][k_mod],
                             100 * lab[name][k_lab], PEAK_BOUND if judged else None, "cm"))
        dt = float(run.time[k_mod] - t_lab[k_lab])
        rows.append(Metric(case, f"{scheme}: {name} time of peak", float(run.time[k_mod]),
                           float(t_lab[k_lab]), dt, TIME_BOUND if judged else None,
                           "absolute", "s"))
    rows.append(relative(case, f"{scheme}: max runup at the valley head (waterline)",
                         100 * run.runup, 100 * measured_runup(),
                         RUNUP_BOUND if judged else None, "cm"))
    rows.append(relative(case, f"{scheme}: highest surface over reached ground there",
                         100 * run.surface_runup, 100 * measured_runup(), None, "cm"))
    rows.append(Metric(case, f"{scheme}: CPU time", run.cpu_s, 0.0, run.cpu_s, None,
                       "absolute", "s"))
    return rows


def bp7(outdir: Path | None = None, coarsen: int = 1) -> CaseResult:
    """BP7 with the new scheme (judged) and the leapfrog (reported) side by side."""
    start = time.perf_counter()
    result = CaseResult("bp7")
    runs = {s: run_monai(s, coarsen) for s in ("fv2", "leapfrog")}
    for scheme, run in runs.items():
        result.metrics += _metrics("bp7", run, judged=scheme == "fv2")
    if outdir is not None:
        result.figures.append(_plot(outdir / "bp7_gauges.png", runs))
    result.wall_time = time.perf_counter() - start
    return result


def _plot(path: Path, runs: dict[str, MonaiRun]) -> Path:
    from matplotlib.figure import Figure

    t_lab, lab = measured_gauges()
    fig = Figure(figsize=(8, 7))
    axes = fig.subplots(len(GAUGES), 1, sharex=True)
    for ax, name in zip(axes, GAUGES, strict=True):
        ax.plot(t_lab, 100 * lab[name], "k-", lw=1, label="laboratory")
        for k, (scheme, run) in enumerate(runs.items()):
            ax.plot(run.time, 100 * run.gauges[name], f"C{k}-", lw=1, label=scheme)
        ax.set_ylabel(f"{name} (cm)")
    axes[0].legend(fontsize=8)
    axes[0].set_title("NTHMP BP7 Monai valley: surface at gauges 5, 7, 9")
    axes[-1].set_xlim(0, DURATION)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
