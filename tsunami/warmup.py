"""Compile the Numba kernels ahead of the first run (`tsunami compile`).

A fresh process compiles each kernel the first time it runs with a new precision: about
a minute of one core for the leapfrog in each precision and as much again for the
finite-volume scheme. Compiled code goes to Numba's on-disk cache (``cache=True``: the
package's ``__pycache__``, or ``NUMBA_CACHE_DIR``), from which every later process loads
it in about a second. So compile once where it costs nothing: at installation, when a
service starts (before the first alert, not after it), or on a spare core while the test
suite starts on the other.

A run from the command line (``tsunami run``) that finds the cache without its kernels
compiles them before its first step, the passes (precision and scheme) in parallel on two
cores (:func:`compile_missing`), and says so: a first run after installation otherwise
sat at 0 % for two minutes, compiling the leapfrog and then fv2 on one core.

Each precision and scheme is compiled by stepping a tiny nested model (a parent grid
with sea and land, a wave entering through an open side, a child nested in it) through
the same code paths as a real run, so the cache holds exactly the signatures runs use.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np

from tsunami.boundaries import Boundaries, IncidentWave, Open, Wall
from tsunami.damage.uncertainty import MonteCarlo
from tsunami.fields import maxima_dataset
from tsunami.grid import Grid
from tsunami.model import FV2_SPACING, SCHEMES, ShallowWaterModel
from tsunami.nesting import NestedModel

DTYPES = ("float32", "float64")
# The kernel that stands for each scheme in the cache: its largest, compiled last of its
# pass's big ones (tests/test_warmup.py checks the judgement against a real compile).
MAIN_KERNEL = {"leapfrog": "update_fluxes", "fv2": "fv2_stage"}
RATIO = 3
STEPS = 10


def _tiny_nest(dtype: str, scheme: str) -> NestedModel:
    """Parent 16 x 12 cells of 100 m: a sloping beach from 20 m depth to 5 m of land,
    a wave entering from the west; a child at a third of the spacing over the shore."""
    wave = IncidentWave(np.array([0.0, 60.0, 600.0]), np.array([0.0, 0.5, 0.0]))
    boundaries = Boundaries(west=wave, east=Wall(), south=Open(), north=Wall())

    def beach(grid: Grid) -> np.ndarray:
        x, _ = np.meshgrid(grid.x, grid.y)
        return 20.0 - 25.0 * x / 1600.0

    parent_grid = Grid(nx=16, ny=12, x0=0.0, y0=0.0, dx=100.0, dy=100.0, name="parent")
    child_grid = Grid(nx=12, ny=9, x0=900.0, y0=300.0, dx=100.0 / RATIO, dy=100.0 / RATIO,
                      name="child")
    # The parent's fixed 2 s step lets the film below drain more than a quarter of a cell
    # in one step, so the leapfrog's positivity limiter runs too (the numbers are not used).
    parent, child = (ShallowWaterModel(g, beach(g), manning=0.025, boundaries=b,
                                       dtype=np.dtype(dtype), scheme=scheme, dt=dt)
                     for g, b, dt in ((parent_grid, boundaries, 2.0), (child_grid, None, None)))
    for model in (parent, child):
        # a 2 cm film on the beach running at 19 m/s: thin fast water takes the
        # positivity limiters' code paths too
        model.set(eta=np.where(model.h > 0, 0.5, 0.02 - model.h), u=np.full(model.grid.shape, 19.0))
    return NestedModel([(parent, None, None), (child, "parent", RATIO)])


def compile_kernels(dtypes: Iterable[str] = DTYPES, schemes: Iterable[str] = SCHEMES, *,
                    damage: bool = True,
                    log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Compile (or load from the cache) every kernel a run of these precisions and schemes
    uses, and the damage Monte Carlo kernel. Returns the seconds each part took."""
    seconds: dict[str, float] = {}
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        for scheme in schemes:
            start = time.perf_counter()
            nest = _tiny_nest(dtype, scheme)
            for _ in range(STEPS):
                nest.step()
            nest.check_health()  # (its kernel pass, as a run's health checks use it)
            # (and the maxima, as a run's outputs read them: a parent's take its child's)
            for model in nest.models:
                maxima_dataset(model, {}, nest.covered(model))
                model.velocities()
            seconds[f"{scheme} {dtype}"] = time.perf_counter() - start
            if log:
                log(f"{scheme} {dtype}: {seconds[f'{scheme} {dtype}']:.1f} s")
    if damage:
        start = time.perf_counter()
        exceed = np.array([[[0.9, 0.5, 0.1], [0.2, 0.1, 0.0]]])
        MonteCarlo(scenario_weights=np.ones(1), n_cells=2, n_districts=1, severe=2,
                   draws=10).simulate(exceed, np.ones(2), np.zeros(2), np.arange(2),
                                      range(1), off_grid=False)
        seconds["damage"] = time.perf_counter() - start
        if log:
            log(f"damage: {seconds['damage']:.1f} s")
    return seconds


def compile_in_background(*passes: tuple[str, str], damage: bool = True) -> subprocess.Popen:
    """Start a process that runs :func:`compile_kernels` for each ``(dtype, scheme)`` pass
    in order, then (with ``damage``) the damage kernel; the caller goes on meanwhile and
    should terminate the process when it is done with it."""
    code = "from tsunami.warmup import compile_kernels\n" + "".join(
        f"compile_kernels([{dtype!r}], [{scheme!r}], damage=False)\n"
        for dtype, scheme in passes) + f"compile_kernels([], damage={damage})\n"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def is_cached(dtype: str, scheme: str) -> bool:
    """Whether Numba's on-disk cache holds the ``scheme``'s kernels in this precision
    (judged by :data:`MAIN_KERNEL`); False where that cannot be told."""
    from tsunami import kernels

    try:
        # Numba keeps no public API for this: its index maps (signature, target, ...) keys
        # to cached overloads, and a stale index (changed source) loads as empty.
        index = getattr(kernels, MAIN_KERNEL[scheme])._cache._cache_file._load_index()
        return any(str(key[0][0].dtype) == dtype for key in index)
    except Exception:  # another Numba's internals: a cold cache is the safe guess
        return False


def run_passes(region, scenario) -> list[tuple[str, str]]:
    """The (precision, scheme) passes a run of ``scenario`` on ``region`` compiles, the
    outermost grid's first. A grid on ``"auto"`` counts as fv2 where its cells are fine
    enough for it (whether it holds land is known only once its DEM is read)."""
    passes: list[tuple[str, str]] = []
    for spec in region.grids:
        scheme = spec.scheme
        if scheme == "auto":
            scheme = "fv2" if region.grid(spec.name).min_spacing() <= FV2_SPACING else "leapfrog"
        if (scenario.numerics.dtype, scheme) not in passes:
            passes.append((scenario.numerics.dtype, scheme))
    return passes


def compile_side_by_side(passes: list[tuple[str, str]], *, damage: bool = False,
                         log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Compile ``passes`` on two cores: every other one here (then, with ``damage``, the
    damage kernel), the others meanwhile in a background process (each pass compiles on
    one core, so the wait is about half their sum); waits for both. Returns the seconds
    of the passes compiled here and ``"all"``, the wall time until all were ready; raises
    when either side failed (after the other has finished)."""
    start = time.perf_counter()
    helper = compile_in_background(*passes[1::2], damage=False) if passes[1::2] else None
    seconds: dict[str, float] = {}
    try:
        try:
            for dtype, scheme in passes[0::2]:
                seconds |= compile_kernels([dtype], [scheme], damage=False, log=log)
            if damage:
                seconds |= compile_kernels([], damage=True, log=log)
        finally:
            if helper is not None:
                helper.wait()
        if helper is not None and helper.poll() != 0:
            raise RuntimeError(f"the second compiling process failed (exit status "
                               f"{helper.poll()})")
    finally:  # (interrupted)
        if helper is not None and helper.poll() is None:
            helper.terminate()
    seconds["all"] = time.perf_counter() - start
    return seconds


def compile_missing(passes: Iterable[tuple[str, str]],
                    log: Callable[[str], None] | None = None) -> dict[str, float]:
    """Compile the passes the cache lacks before a run steps, side by side
    (:func:`compile_side_by_side`); nothing where all are cached. A failure is said and
    left to the run, which compiles what it needs as it steps. Returns the seconds each
    pass took here and ``"all"``, the wall time until every pass was ready."""
    missing = [p for p in passes if not is_cached(*p)]
    if not missing:
        return {}
    if log:
        log("compiling the solver's kernels for " + ", ".join(" ".join(p) for p in missing)
            + " (once after installation, about a minute per pass on one core; later runs"
            " load them in a second; `tsunami compile` does it ahead)")
    start = time.perf_counter()
    try:
        seconds = compile_side_by_side(missing)
    except Exception as exc:  # not the run's failure: it compiles what it needs as it steps
        seconds = {"all": time.perf_counter() - start}
        if log:
            log(f"compiling ahead failed ({type(exc).__name__}: {exc}); the run compiles as "
                "it steps")
        return seconds
    if log:
        log(f"kernels compiled in {seconds['all']:.0f} s")
    return seconds
