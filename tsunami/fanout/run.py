"""Town grids fanned out across Dask workers: the region first, then one task per town.

:func:`run_fanout` splits a region's nest (:func:`town_subtrees`) into the *regional*
grids and one sub-tree of nested grids per town. One task (:func:`regional_stage`)
builds only the regional grids (bathymetry made consistent across their levels, initial
surface from the source), steps them and records, at every step of each town's parent
grid, the boundary forcing along the town's edges (:mod:`tsunami.fanout.forcing`); it
needs of a town only where its outermost grid sits in the parent. Each town's sub-tree
then runs as its own task (:func:`town_stage`): it builds its own grids from the
region's DEMs (its outermost grid's edge blended toward the parent's recorded depth, as
in the two-way nest), sets their initial surface from the source and runs two-way
inside the town, driven one-way by the recorded forcing. The client merges the regional
and town fields, and the gauge series each stage recorded on its own grids, into a
:class:`~tsunami.runner.RunResult`, so ``write_outputs`` and publication work as for a
two-way run.

Callbacks that a two-way run calls after every step of the outermost grid (a kinematic
rupture raising the surface, gauges sampling it) are called in a town's task at the
same model times (the regional stage records them), on the town's own grids.

The input checks' warnings (a town at sea, a DEM hole filled, land and sea that look
swapped, a quiet hole in a source raster) are kept by each task as
:class:`~tsunami.errors.Finding` s, which the client raises as
:class:`~tsunami.errors.InputWarning` s naming the task and records in the result:
raised in a worker, they would reach only its log. A task that fails hands back those it
had found with its exception (:func:`~tsunami.errors.findings_kept`), and the client
raises them, with those of the towns' tasks finished by then, before the error, which
they may explain; the towns whose tasks were still running are cancelled, and named in a
last warning (their own warnings are unknown).

What differs from the two-way run: the towns do not feed back into the region, so the
regional grids (and through them the other towns) do not see what a town's finer
bathymetry does to the wave; the parent's cells under a town keep its own bathymetry
and initial surface (a two-way nest puts the town's means there).
"""

from __future__ import annotations

import dataclasses
import resource
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from tsunami import checks, gauges
from tsunami.errors import Finding, InputError, InputWarning, findings_kept, findings_of
from tsunami.fanout.forcing import BoundaryRecorder, BoundaryRecording, RecordedParent, Window
from tsunami.fields import merge_finest
from tsunami.gauges import Gauge, GaugeRecorder
from tsunami.grid import Grid
from tsunami.nesting import NestedModel
from tsunami.region import Region
from tsunami.runner import (
    RunResult,
    _provenance,
    apply_source,
    build_grids,
    check_source_frame,
    grid_fields,
)
from tsunami.scenario import Scenario
from tsunami.simulation import Simulation

#: A town's clock (its parent's, summed over sub-steps) meets a step of the region's
#: outermost grid when within this (s) of it.
CLOCK_TOLERANCE = 1e-6


def town_subtrees(region: Region, roots: dict[str, str] | None = None) -> dict[str, str]:
    """The outermost grid of each town's sub-tree (town name -> grid name).

    By default, for each town, the grid on the path from the outermost grid to the
    finest grid covering the town's centre that is the coarsest one below every grid shared with
    another town (and never the outermost grid itself): on the Okushiri demo, Aonae_30m
    for Aonae and Monai_30m for Monai. ``roots`` chooses them instead.
    """
    parents = {g.name: g.parent for g in region.grids}
    outer = region.grids[0].name
    chains = {}
    for town in region.towns:
        west, east, south, north = town.extent
        centre = (0.5 * (west + east), 0.5 * (south + north))
        covering = [g.name for g in region.grids
                    if _contains(region.grid(g.name).bounds, centre)]
        if not covering:
            raise InputError(region.path, "town", f"town {town.name!r}: no grid covers it")
        chain = [covering[-1]]
        while parents[chain[-1]] is not None:
            chain.append(parents[chain[-1]])
        chains[town.name] = chain[::-1]
    out = {}
    for name, chain in chains.items():
        if roots and name in roots:
            if roots[name] not in chain[1:]:
                raise InputError(region.path, "town", f"town {name!r}: grid {roots[name]!r} "
                                 f"is not below {outer!r} on its path {chain}")
            out[name] = roots[name]
            continue
        shared = {g for other, c in chains.items() if other != name for g in c}
        free = [g for g in chain[1:] if g not in shared]
        if not free:
            raise InputError(region.path, "town", f"town {name!r}: its grids {chain} are "
                             "shared with another town; it cannot run on its own")
        out[name] = free[0]
    taken = sorted(out.values())
    if len(set(taken)) != len(taken):
        raise InputError(region.path, "town", "two towns share a sub-tree: give them one "
                         "[[town]] or distinct nested grids")
    return out


def _contains(bounds, point) -> bool:
    west, south, east, north = bounds
    return west <= point[0] <= east and south <= point[1] <= north


@dataclass
class TownTask:
    """What a town's task needs to build and run its sub-tree of grids: the region
    (without cached rasters: the task reads the DEMs itself) and scenario, the grids'
    (name, parent, ratio) levels under the parent, the parent's recorded forcing, the
    times (s) at which the region's outermost grid ended its steps, and the gauges whose
    finest grid is one of the town's."""

    town: str
    region: Region
    scenario: Scenario
    levels: list[tuple[str, str, int]]
    recording: BoundaryRecording
    root_times: np.ndarray
    gauges: list[Gauge]
    attrs: dict


@dataclass
class RegionalResult:
    """The regional stage's output: regional grids' fields and gauge series, one
    :class:`TownTask` per town, every grid's geometry, timings, the peak memory of
    the process (MB) and the input checks' findings (module doc)."""

    fields: dict[str, xr.Dataset]
    tasks: dict[str, TownTask]
    steps: dict[str, int]
    setup_s: float
    simulation_s: float
    peak_memory_mb: float
    grids: dict[str, Grid] = field(default_factory=dict)
    gauges: xr.Dataset | None = None
    cpu_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)


@dataclass
class TownResult:
    """A town's task's output: its grids' fields, steps and gauge series, timings, where
    it ran and the input checks' findings on its grids (module doc)."""

    town: str
    fields: dict[str, xr.Dataset]
    steps: dict[str, int]
    simulation_s: float
    cpu_s: float
    peak_memory_mb: float
    worker: str = ""
    gauges: xr.Dataset | None = None
    setup_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)


def regional_stage(region: Region, scenario: Scenario,
                   roots: dict[str, str] | None = None) -> RegionalResult:
    """Build and run the regional grids, recording each town's forcing (module doc)."""
    findings: list[Finding] = []
    with findings_kept(findings):  # a failure hands them to the client too
        return _regional_stage(region, scenario, roots, findings)


def _regional_stage(region: Region, scenario: Scenario, roots: dict[str, str] | None,
                    findings: list[Finding]) -> RegionalResult:
    start, cpu = time.perf_counter(), time.process_time()
    if len(region.grids) < 2:
        raise InputError(region.path, "grid", "fan-out needs nested town grids")
    check_source_frame(region, scenario, [])
    subtrees = town_subtrees(region, roots)
    town_of = town_of_grids(region, subtrees)
    specs = {g.name: g for g in region.grids}
    models = build_grids(region, scenario, [n for n in specs if n not in town_of], findings)
    nest = NestedModel([(models[n], specs[n].parent, specs[n].ratio) for n in models])
    checks.check_water(region, scenario, nest.root, findings)
    callbacks: list = []
    apply_source(nest, scenario, callbacks, findings=findings)
    windows: dict[str, dict[str, Window]] = {}
    for town, top in subtrees.items():
        spec = specs[top]
        windows.setdefault(spec.parent, {})[town] = Window.of(
            models[spec.parent].grid, region.grid(top), spec.ratio)
    recorders = []
    for parent_name, by_town in windows.items():
        recorder = BoundaryRecorder(models[parent_name], by_town)
        nest.after_step.append(recorder)
        recorders.append(recorder)
    owner = _gauge_towns(region, town_of)
    regional_gauges = [g for g in region.gauges if owner[g.name] is None]
    gauge_recorder = None
    if regional_gauges:
        gauge_recorder = GaugeRecorder(nest, regional_gauges, scenario.output.gauge_interval)
        callbacks.append(gauge_recorder)
    root_times: list[float] = []
    callbacks.append(lambda model: root_times.append(model.time))
    setup = time.perf_counter() - start
    simulation = Simulation(nest, scenario.duration, callbacks=callbacks)
    simulation.run()
    attrs = _provenance(region, scenario)

    def covered(model) -> np.ndarray:
        mask = nest.covered(model)
        for w in windows.get(model.grid.name, {}).values():
            mask[w.row0:w.row0 + w.rows, w.col0:w.col0 + w.cols] = True
        return mask

    fields = grid_fields(nest.models, attrs, covered)
    recordings = {town: rec for r in recorders for town, rec in r.recordings.items()}
    bare = dataclasses.replace(region, _rasters={})  # a task reads only what it needs
    tasks = {}
    for town in subtrees:
        levels = [(g.name, g.parent, g.ratio) for g in region.grids
                  if town_of.get(g.name) == town]
        tasks[town] = TownTask(town, bare, scenario, levels, recordings[town],
                               np.array(root_times), [g for g in region.gauges
                                                      if owner[g.name] == town], attrs)
    return RegionalResult(fields, tasks, {m.grid.name: m.iteration for m in nest.models},
                          setup, simulation.wall_time, _peak_memory_mb(),
                          {g.name: region.grid(g.name) for g in region.grids},
                          gauge_recorder.to_dataset(attrs) if gauge_recorder else None,
                          time.process_time() - cpu, findings)


def _gauge_towns(region: Region, town_of: dict[str, str]) -> dict[str, str | None]:
    """The town whose grids record each gauge (gauge name -> town, None for a regional
    grid): the finest grid containing it, as :class:`~tsunami.gauges.GaugeRecorder`
    picks it in a two-way run."""
    grids = [region.grid(g.name) for g in region.grids]
    owner = {}
    for gauge in region.gauges:
        inside = [g for g in grids if g.contains(gauge.x, gauge.y)]
        finest = min(inside, key=lambda g: g.min_spacing()) if inside else None
        owner[gauge.name] = town_of.get(finest.name) if finest else None
    return owner


def town_of_grids(region: Region, subtrees: dict[str, str]) -> dict[str, str]:
    """The town each grid of a town's sub-tree belongs to (grid name -> town name), from
    :func:`town_subtrees`; regional grids are absent."""
    specs = {g.name: g for g in region.grids}
    return {g.name: town for town, top in subtrees.items() for g in region.grids
            if g.name == top or _below(specs, g.name, top)}


def _below(specs, name: str, top: str) -> bool:
    parent = specs[name].parent
    while parent is not None:
        if parent == top:
            return True
        parent = specs[parent].parent
    return False


def town_stage(regional: RegionalResult | TownTask, town: str | None = None) -> TownResult:
    """Build one town's sub-tree and run it driven by its recorded forcing (two-way
    inside it)."""
    task = regional.tasks[town] if isinstance(regional, RegionalResult) else regional
    findings: list[Finding] = []
    with findings_kept(findings):  # a failure hands them to the client too
        return _town_stage(task, findings)


def _town_stage(task: TownTask, findings: list[Finding]) -> TownResult:
    wall, cpu = time.perf_counter(), time.process_time()
    stand_in = RecordedParent(task.recording)
    models = build_grids(task.region, task.scenario, [n for n, _, _ in task.levels], findings)
    # As in the two-way nest: the town's outermost grid blended toward the parent's
    # depth at its edges, each grid's depth under its children their mean.
    nest = NestedModel([(stand_in, None, None)] +
                       [(models[n], p, r) for n, p, r in task.levels])
    grids = list(models.values())
    checks.check_towns(task.region, grids, [task.town], findings)
    callbacks: list = []
    apply_source(nest, task.scenario, callbacks, grids, findings)
    recorder = None
    if task.gauges:
        recorder = GaugeRecorder(nest, task.gauges, task.scenario.output.gauge_interval)
        callbacks.append(recorder)
    setup = time.perf_counter() - wall
    callbacks = [AtRegionalSteps(task.root_times, callbacks)] if callbacks else []
    # Up to where the region stopped: its outermost grid's last step may end after the
    # scenario's duration, and the town's parent passes the duration before that.
    Simulation(nest, float(task.root_times[-1]), callbacks=callbacks).run()
    fields = grid_fields(grids, task.attrs, nest.covered)
    return TownResult(task.town, fields, {m.grid.name: m.iteration for m in grids},
                      time.perf_counter() - wall, time.process_time() - cpu,
                      _peak_memory_mb(), _where(),
                      recorder.to_dataset(task.attrs) if recorder else None, setup, findings)


class AtRegionalSteps:
    """Calls ``callbacks`` with a town's nest when its clock reaches each of ``times``
    (s), the ends of the steps of the region's outermost grid: a two-way run calls its
    callbacks (kinematic rupture, gauges) there, while the town's stand-in parent may
    step several times per such step."""

    def __init__(self, times: np.ndarray, callbacks: list) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.callbacks = list(callbacks)
        self._next = 0

    def __call__(self, model) -> None:
        if self._next < self.times.size and \
                model.time >= self.times[self._next] - CLOCK_TOLERANCE:
            self._next += 1
            for callback in self.callbacks:
                callback(model)


@dataclass
class FanoutReport:
    """Timings of a fan-out run: the regional stage, each town's task, the whole."""

    regional_s: float
    towns: dict[str, TownResult]
    wall_s: float
    recording_mb: float
    regional_peak_mb: float = 0.0
    regional_cpu_s: float = 0.0

    def summary(self) -> str:
        lines = [f"fan-out: regional stage {self.regional_s:.1f} s ({self.regional_cpu_s:.1f} "
                 f"s CPU, peak {self.regional_peak_mb:.0f} MB; forcing recorded: "
                 f"{self.recording_mb:.1f} MB), total {self.wall_s:.1f} s wall"]
        for name, t in self.towns.items():
            lines.append(f"  town {name}: {t.simulation_s:.1f} s wall, {t.cpu_s:.1f} s CPU, "
                         f"peak {t.peak_memory_mb:.0f} MB on {t.worker}")
        return "\n".join(lines)


def run_fanout(region: Region, scenario: Scenario, client,
               roots: dict[str, str] | None = None) -> tuple[RunResult, FanoutReport]:
    """Run ``scenario`` on ``region`` with each town's grids as its own Dask task on
    ``client`` (module doc); returns the merged fields (with the input checks' findings
    as ``input_warnings``, each also raised here) and the timings."""
    start = time.perf_counter()
    found: list[str] = []  # each task's findings, named after it
    try:
        future = client.submit(regional_stage, region, scenario, roots, pure=False)
        regional: RegionalResult = _result(future, "regional stage", found)
        regional_s = time.perf_counter() - start
        # Each town task gets only its own forcing and grids.
        futures = {town: client.submit(town_stage, client.scatter(task), pure=False)
                   for town, task in regional.tasks.items()}
        towns = _town_results(futures, found)
    finally:  # before a task's error too: a warning may say why it failed
        shown = dict.fromkeys(found)  # once each
        for text in shown:
            warnings.warn(text, InputWarning, stacklevel=2)
    fields = dict(regional.fields)
    steps = dict(regional.steps)
    for t in towns.values():
        fields.update(t.fields)
        steps.update(t.steps)
    order = [g.name for g in region.grids]
    fields = {n: fields[n] for n in order}
    merged = {t.name: merge_finest(fields, regional.grids, t.name, t.extent)
              for t in region.towns}
    series = [ds for ds in [regional.gauges] + [t.gauges for t in towns.values()]
              if ds is not None]
    gauge_series = gauges.merge(series, [g.name for g in region.gauges]) if series else None
    wall = time.perf_counter() - start
    timings = {"setup_s": regional.setup_s, "simulation_s": wall - regional.setup_s,
               "regional_s": regional_s,
               **{f"town_{n}_s": t.simulation_s for n, t in towns.items()}}
    result = RunResult(region, scenario, fields, gauge_series, merged, timings,
                       {n: steps[n] for n in order}, input_warnings=list(shown))
    recording = sum(t.recording.nbytes for t in regional.tasks.values()) / 1e6
    return result, FanoutReport(regional_s, towns, wall, recording, regional.peak_memory_mb,
                                regional.cpu_s)


def _result(future, task: str, found: list[str]) -> RegionalResult | TownResult:
    """The result of ``future``, ``task``'s; its findings (those it had made when it
    raised, if it did) added to ``found``, each naming the task."""
    try:
        result = future.result()
    except Exception as exc:
        found.extend(f"{f} (fan-out: {task})" for f in findings_of(exc))
        raise
    found.extend(f"{f} (fan-out: {task})" for f in result.findings)
    return result


def _town_results(futures: dict, found: list[str]) -> dict[str, TownResult]:
    """Each town's result (town -> its task's future), its findings added to ``found``
    as :func:`_result` adds them. Once a task fails, the findings of every task finished
    by then, done or failed, are added (town order), those still running are cancelled
    and named in a last entry of ``found`` (their warnings are unknown: the list is not
    complete), and the first failed town's error is raised: a failed run stops without
    waiting out the other towns' simulations, whose warnings the corrected run shows."""
    from distributed import as_completed

    for future in as_completed(futures.values()):
        if future.status == "error":
            break
    towns, cancelled, error, failed = {}, [], None, None
    for town, future in futures.items():
        if future.status == "pending":
            future.cancel()
            cancelled.append(town)
            continue
        try:
            towns[town] = _result(future, f"town {town!r}'s task", found)
        except Exception as exc:
            if error is None:
                error, failed = exc, town
    if error is not None:
        if cancelled:
            found.append(f"not finished, cancelled after town {failed!r}'s task failed: "
                         f"the tasks of towns {', '.join(map(repr, cancelled))}; their input "
                         "warnings, if any, are not shown (fan-out)")
        raise error
    return towns


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


