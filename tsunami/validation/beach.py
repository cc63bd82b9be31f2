"""Solitary wave on a 1:19.85 plane beach: NTHMP BP1 (analytical) and BP4 (laboratory).

Set-up (Synolakis 1987; NTHMP benchmark descriptions): origin at the initial shoreline,
x positive seaward, still depth h = x tan(beta) on the beach (cot beta = 19.85) and d
beyond the toe X0 = d cot beta. The solitary wave eta = H sech^2(gamma (x - X1)/d),
gamma = sqrt(3H/4d), starts centred at X1 = X0 + d arccosh(sqrt 20)/gamma with velocity
u = -sqrt(g/d) eta. Lengths are reported in units of d, times in units of sqrt(d/g).

The flume is a strip of the 2-D model (walls on its long sides), run at d = 1 m for BP1
and at the laboratory depths for BP4, frictionless as the benchmarks prescribe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsunami.boundaries import Boundaries, Open, Wall
from tsunami.diagnostics import SnapshotRecorder, runup
from tsunami.grid import GRAVITY, Grid
from tsunami.model import ShallowWaterModel
from tsunami.simulation import Simulation
from tsunami.validation import DATA, CaseResult, Metric, relative

COT_BETA = 19.85


@dataclass
class BeachRun:
    """Result of one run: profiles {t/tau: eta/d along x/d} and the runup R/d."""

    x: np.ndarray
    profiles: dict[float, np.ndarray]
    runup: float
    model: ShallowWaterModel


def run_solitary_wave(height: float, depth: float = 1.0, dx: float = 0.05,
                      times: tuple[float, ...] = (), stop: float = 80.0, land: float = 4.0,
                      dtype: type = np.float32) -> BeachRun:
    """Run the benchmark for wave height ``height`` (H/d) and return scaled results.

    ``dx`` and ``land`` (extent of dry beach) are in units of d; ``times`` and ``stop``
    in units of sqrt(d/g).
    """
    d, g = depth, GRAVITY
    tau = np.sqrt(d / g)
    gamma = np.sqrt(0.75 * height)
    x_toe = COT_BETA
    x_wave = x_toe + np.arccosh(np.sqrt(20.0)) / gamma
    x_east = x_wave + 4.0 / gamma + 5.0
    nx = int(np.ceil((x_east + land) / dx))
    grid = Grid(nx=nx, ny=3, x0=-land * d, y0=0.0, dx=dx * d, dy=20 * dx * d,
                name=f"beach H/d={height:g}")
    x = grid.x / d
    still = np.where(x < x_toe, x / COT_BETA, 1.0) * d
    wave = height * d / np.cosh(gamma * (x - x_wave)) ** 2
    model = ShallowWaterModel(
        grid, np.broadcast_to(still, grid.shape), manning=0.0, dtype=dtype,
        boundaries=Boundaries(west=Wall(), east=Open(), south=Wall(), north=Wall()),
        dry_depth=1e-5 * d, max_speed=10 * np.sqrt(g * d), arrival_threshold=0.01 * d)
    model.set(eta=np.broadcast_to(wave, grid.shape),
              u=np.broadcast_to(-np.sqrt(g / d) * wave, grid.shape))

    def surface(m):
        row = m.eta[1].astype(np.float64)
        return np.where(m.eta[1] + m.h[1] > m.dry_depth, row / d, np.nan)

    recorder = SnapshotRecorder(model, [t * tau for t in times], surface)
    Simulation(model, stop * tau, callbacks=[recorder]).run()
    profiles = {round(t / tau, 6): v for t, v in recorder.snapshots.items()}
    return BeachRun(x, profiles, runup(model, min_depth=1e-4 * d) / d, model)


def profile_error(run: BeachRun, t: float, x_ref: np.ndarray, eta_ref: np.ndarray,
                  height: float) -> float:
    """RMS difference of eta/d where both are wet, normalised by H/d."""
    model = np.interp(x_ref, run.x, run.profiles[t], left=np.nan, right=np.nan)
    both = np.isfinite(model) & np.isfinite(eta_ref)
    return float(np.sqrt(np.mean((model[both] - eta_ref[both]) ** 2)) / height)


def read_bp1_profiles() -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Analytical BP1 profiles: x/d and {t/tau: eta/d} (NaN on dry land)."""
    rows = []
    with open(DATA / "bp01" / "canonical_profiles.txt") as f:
        for line in f:
            parts = line.split()
            if not parts or not _is_number(parts[0]):
                if parts and parts[0].startswith("x/d"):
                    header = [float(p.split("=")[1]) for p in parts[1:] if "=" in p] or [
                        float(p) for p in parts[2:]]
                continue
            rows.append([float(p) for p in parts])
    table = np.array(rows)
    return table[:, 0], {t: table[:, k + 1] for k, t in enumerate(header)}


def read_bp4_profile(height: str, t: int) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(DATA / "bp04" / f"profile_h{height}_t{t}.txt")
    order = np.argsort(table[:, 0])
    return table[order, 0], table[order, 1]


def lab_runup(height: float, window: float = 0.001) -> float:
    """Mean measured R/d of the laboratory runs within ``window`` of H/d (for 0.0185: the
    runs at 0.018 and 0.019; for 0.3: the run at 0.298)."""
    table = np.loadtxt(DATA / "bp04" / "Lab_runup.txt", comments="#")
    near = np.abs(table[:, 0] - height) <= window
    if not near.any():
        near = np.abs(table[:, 0] - height) == np.abs(table[:, 0] - height).min()
    return float(table[near, 1].mean())


def runup_law(height: float) -> float:
    """Synolakis (1987) runup law for non-breaking waves: R/d = 2.831 sqrt(cot b) (H/d)^1.25."""
    return 2.831 * np.sqrt(COT_BETA) * height**1.25


def bp1(outdir: Path | None = None) -> CaseResult:
    start = time.perf_counter()
    height = 0.019
    x_ref, refs = read_bp1_profiles()
    times = tuple(refs)
    run = run_solitary_wave(height, times=times, stop=80.0, land=4.0, dx=0.025)
    result = CaseResult("bp1")
    for t in times:
        err = profile_error(run, t, x_ref, refs[t], height)
        result.metrics.append(Metric("bp1", f"profile t={t:g} (rms/H)", err, 0.0, err, 0.10,
                                     "normalised rms"))
    result.metrics.append(relative("bp1", "max runup R/d (runup law)", run.runup,
                                   runup_law(height), 0.10))
    if outdir is not None:
        result.figures.append(_plot_profiles(
            outdir / "bp1_profiles.png", "NTHMP BP1: H/d = 0.019, analytical vs model", run,
            {t: (x_ref, refs[t]) for t in times}, xlim=(-3, 25), reference="analytical"))
    result.wall_time = time.perf_counter() - start
    return result


# BP4 profiles: the NTHMP tolerance applies to runup; the profiles are compared and
# reported, with a loose bound that only guards against regressions. Laboratory noise is
# about 0.1 H for H/d = 0.0185, and the shallow-water equations move the breaking bore
# (H/d = 0.3) ahead of the measured wave before it reaches the shore.
PROFILE_GUARD = 0.5


def _bp4(case: str, height: float, label: str, times: tuple[int, ...], land: float,
         dx: float, bound_runup: float, outdir: Path | None) -> CaseResult:
    start = time.perf_counter()
    depth = 0.30 if height < 0.1 else 0.15
    run = run_solitary_wave(height, depth=depth, dx=dx, times=tuple(float(t) for t in times),
                            stop=max(times) + 40.0, land=land)
    result = CaseResult(case)
    refs = {t: read_bp4_profile(label, t) for t in times}
    for t in times:
        x_ref, eta_ref = refs[t]
        err = profile_error(run, float(t), x_ref, eta_ref, height)
        result.metrics.append(Metric(case, f"profile t={t} (rms/H)", err, 0.0, err,
                                     PROFILE_GUARD, "normalised rms"))
    result.metrics.append(relative(case, "max runup R/d (lab)", run.runup, lab_runup(height),
                                   bound_runup))
    if outdir is not None:
        result.figures.append(_plot_profiles(
            outdir / f"{case}_profiles.png",
            f"NTHMP BP4: H/d = {height:g}, laboratory vs model (d = {depth} m)", run,
            {float(t): refs[t] for t in times}, xlim=(-land, 25), reference="laboratory"))
    result.wall_time = time.perf_counter() - start
    return result


def bp4_nonbreaking(outdir: Path | None = None) -> CaseResult:
    return _bp4("bp4_nonbreaking", 0.0185, "0.0185", (30, 40, 50, 60, 70), land=4.0,
                dx=0.05, bound_runup=0.10, outdir=outdir)


def bp4_breaking(outdir: Path | None = None) -> CaseResult:
    return _bp4("bp4_breaking", 0.3, "0.3", (15, 20, 25, 30), land=16.0, dx=0.05,
                bound_runup=0.20, outdir=outdir)


def _plot_profiles(path: Path, title: str, run: BeachRun, refs: dict, xlim, reference: str):
    from matplotlib.figure import Figure

    times = sorted(refs)
    fig = Figure(figsize=(8, 1.9 * len(times)))
    axes = fig.subplots(len(times), 1, sharex=True)
    beach = np.where(run.x < COT_BETA, run.x / COT_BETA, 1.0)
    for ax, t in zip(np.atleast_1d(axes), times, strict=True):
        x_ref, eta_ref = refs[t]
        ax.fill_between(run.x, -beach, -1.2, color="0.8", lw=0)
        ax.plot(x_ref, eta_ref, "k.", ms=3, label=reference)
        ax.plot(run.x, run.profiles[t], "C0-", lw=1.2, label="model")
        top = np.nanmax(np.abs(eta_ref)) * 1.6
        ax.set_ylim(-top, top)
        ax.set_xlim(*xlim)
        ax.set_ylabel("eta / d")
        ax.text(0.99, 0.85, f"t = {t:g} sqrt(d/g)", transform=ax.transAxes, ha="right")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=8)
    np.atleast_1d(axes)[0].set_title(f"{title}; runup R/d = {run.runup:.4f}")
    np.atleast_1d(axes)[-1].set_xlabel("x / d (0 = initial shoreline, seaward positive)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
