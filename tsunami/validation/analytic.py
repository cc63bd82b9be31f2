"""Exact solutions: lake at rest, volume conservation, Thacker's parabolic bowl."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tsunami.boundaries import Boundaries, Wall
from tsunami.diagnostics import SnapshotRecorder
from tsunami.grid import GRAVITY, Grid
from tsunami.model import ShallowWaterModel
from tsunami.simulation import Simulation
from tsunami.validation import CaseResult, Metric


def island_basin(dtype: type = np.float32) -> tuple[Grid, np.ndarray]:
    """A 1.2 x 0.9 km closed basin with an uneven bed and two islands above water."""
    grid = Grid(nx=120, ny=90, x0=0.0, y0=0.0, dx=10.0, dy=10.0, name="island basin")
    x, y = np.meshgrid(grid.x, grid.y)
    depth = (6.0 + 2.0 * np.sin(x / 37.0) * np.cos(y / 53.0)
             - 10.0 * np.exp(-((x - 350) ** 2 + (y - 450) ** 2) / 90.0**2)
             - 8.0 * np.exp(-((x - 850) ** 2 + (y - 300) ** 2) / 60.0**2)
             + 0.004 * (x - 600))
    return grid, depth


def lake_at_rest(outdir: Path | None = None, steps: int = 1000) -> CaseResult:
    """Water at rest over uneven bathymetry with dry islands must stay at rest."""
    start = time.perf_counter()
    result = CaseResult("lake_at_rest")
    grid, depth = island_basin()
    for dtype in (np.float32, np.float64):
        model = ShallowWaterModel(grid, depth, manning=0.025, dtype=dtype,
                                  boundaries=Boundaries.all(Wall()))
        for _ in range(steps):
            model.step()
        u, v = model.velocities()
        speed = float(np.hypot(u, v).max())
        result.metrics.append(Metric(
            "lake_at_rest", f"max speed after {steps} steps ({np.dtype(dtype).name})", speed,
            0.0, speed, 1e-6, "absolute", "m/s"))
    result.wall_time = time.perf_counter() - start
    return result


def closed_basin(outdir: Path | None = None, steps: int = 3000) -> CaseResult:
    """A hump of water sloshing over dry islands in a walled basin keeps its volume."""
    start = time.perf_counter()
    result = CaseResult("closed_basin")
    grid, depth = island_basin()
    x, y = np.meshgrid(grid.x, grid.y)
    hump = 3.0 * np.exp(-((x - 700) ** 2 + (y - 500) ** 2) / 120.0**2)
    for dtype in (np.float32, np.float64):
        model = ShallowWaterModel(grid, depth, manning=0.02, dtype=dtype,
                                  boundaries=Boundaries.all(Wall()))
        model.set(eta=hump)
        volume = model.volume()
        for _ in range(steps):
            model.step()
        change = model.volume() / volume - 1.0
        wetted = int(np.sum(~model.initially_wet & np.isfinite(model.eta_max)))
        result.metrics.append(Metric(
            "closed_basin", f"volume change, {wetted} cells wetted ({np.dtype(dtype).name})",
            change, 0.0, change, 1e-3, "relative"))
    result.wall_time = time.perf_counter() - start
    return result


def thacker_solution(x: np.ndarray, t: float, a: float, h0: float, b: float,
                     g: float = GRAVITY) -> tuple[np.ndarray, float]:
    """Thacker (1981) planar solution in the bowl depth h0 (1 - x^2/a^2).

    eta = -(B w / g) cos(w t) x - (B^2 / 2g) cos^2(w t), u = B sin(w t), w = sqrt(2 g h0)/a
    (x from the bowl centre; also SWASHES, Delestre et al. 2013, sec. 4.2.2). Returns the
    surface (NaN where dry) and the east shoreline position.
    """
    w = np.sqrt(2 * g * h0) / a
    eta = -(b * w / g) * np.cos(w * t) * x - b**2 / (2 * g) * np.cos(w * t) ** 2
    depth = eta + h0 * (1 - x**2 / a**2)
    shoreline = a * (1 - b * np.cos(w * t) / np.sqrt(2 * g * h0))
    return np.where(depth > 0, eta, np.nan), float(shoreline)


def thacker_parabolic_bowl(outdir: Path | None = None, periods: float = 2.0,
                           dx: float = 5.0) -> CaseResult:
    """Frictionless planar oscillation in a parabolic bowl: surface and shoreline.

    Judged: the surface in the wet region and the farthest flooding on either side of the
    bowl (the inundation extent a forecast publishes). Reported: the shoreline while it
    advances and while it recedes. A staggered leapfrog scheme lets a draining tongue break into
    wet and dry cells that lag the exact shoreline during rundown (a first-order
    wet/dry error of the TUNAMI family); the flooding extent, which forecasts publish,
    is not affected.
    """
    start = time.perf_counter()
    a, h0, g = 1000.0, 10.0, GRAVITY
    b = 0.2 * np.sqrt(2 * g * h0)  # shoreline swings +-0.2 a
    omega = np.sqrt(2 * g * h0) / a
    period = 2 * np.pi / omega
    nx = round(3 * a / dx)
    grid = Grid(nx=nx, ny=3, x0=-1.5 * a, y0=0.0, dx=dx, dy=20 * dx, name="parabolic bowl")
    depth = h0 * (1 - grid.x**2 / a**2)
    model = ShallowWaterModel(grid, np.broadcast_to(depth, grid.shape), manning=0.0,
                              boundaries=Boundaries.all(Wall()), dry_depth=1e-4,
                              dtype=np.float64)
    eta0, _ = thacker_solution(grid.x, 0.0, a, h0, b)
    model.set(eta=np.broadcast_to(np.nan_to_num(eta0, nan=-100.0), grid.shape))
    times = np.linspace(0, periods * period, int(32 * periods) + 1)[1:]

    def surface(m):
        return np.where(m.depth[1] > 1e-3, m.eta[1].astype(np.float64), np.nan)

    recorder = SnapshotRecorder(model, times, surface)
    Simulation(model, periods * period, callbacks=[recorder]).run()

    excursion = a * b / np.sqrt(2 * g * h0)  # shoreline amplitude
    swing = 2 * b * omega / g * a  # surface difference between the shorelines' heights
    advancing, receding, rms = [], [], []
    farthest_east, farthest_west = -np.inf, np.inf
    for t in times:
        exact, shore = thacker_solution(grid.x, t, a, h0, b)
        modelled = recorder.snapshots[t]
        wet = np.isfinite(modelled)
        east = grid.x[wet].max() + 0.5 * dx
        farthest_east = max(farthest_east, east)
        farthest_west = min(farthest_west, grid.x[wet].min() - 0.5 * dx)
        (advancing if np.sin(omega * t) > 0 else receding).append(abs(east - shore))
        both = wet & np.isfinite(exact)
        rms.append(np.sqrt(np.mean((modelled[both] - exact[both]) ** 2)))
    result = CaseResult("thacker")
    cells = 2 * dx
    # Exact extremes: a + excursion on both sides (east at T/2, 3T/2; west at T, 2T).
    for side, value in (("east", farthest_east), ("west", -farthest_west)):
        result.metrics.append(Metric("thacker", f"farthest flooding, {side}", value,
                                     a + excursion, value - (a + excursion), cells, "absolute",
                                     "m"))
    err = max(advancing)
    result.metrics.append(Metric("thacker", "advancing shoreline, max error", err, 0.0, err,
                                 None, "absolute", "m"))
    err = max(receding)
    result.metrics.append(Metric("thacker", "receding shoreline, max lag", err, 0.0, err, None,
                                 "absolute", "m"))
    err = max(rms) / swing
    result.metrics.append(Metric("thacker", "max rms surface error / surface swing", err, 0.0,
                                 err, 0.02, "normalised rms"))
    if outdir is not None:
        result.figures.append(_plot_thacker(outdir / "thacker.png", grid, depth, recorder,
                                            times, a, h0, b, period))
    result.wall_time = time.perf_counter() - start
    return result


def _plot_thacker(path, grid, depth, recorder, times, a, h0, b, period):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.fill_between(grid.x, -depth, -h0 * 1.2, color="0.8", lw=0)
    picks = times[[7, 15, 23, 31]]
    for k, t in enumerate(picks):
        exact, _ = thacker_solution(grid.x, t, a, h0, b)
        ax.plot(grid.x, exact, "k--", lw=1, label="exact" if k == 0 else None)
        ax.plot(grid.x, recorder.snapshots[t], f"C{k}-", lw=1.3,
                label=f"model t = {t / period:.2f} T")
    ax.set_ylim(-h0 * 0.3, h0 * 0.4)
    ax.set_xlabel("x from bowl centre (m)")
    ax.set_ylabel("surface elevation (m)")
    ax.set_title("Thacker planar oscillation in a parabolic bowl (h0 = 10 m, a = 1 km)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
