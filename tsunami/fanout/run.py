"""Town grids fanned out across Dask workers: the region first, then one task per town.

:func:`run_fanout` splits a region's nest (:func:`town_subtrees`) into the *regional*
grids and one sub-tree of nested grids per town. One task (:func:`regional_stage`)
builds the whole nest exactly as a two-way run does (bathymetry made consistent across
all levels, initial surface from the source), then steps only the regional grids and
records, at every step of each town's parent grid, the boundary forcing along the town's
edges (:mod:`tsunami.fanout.forcing`). Each town's sub-tree then runs as its own task
(:func:`town_stage`): two-way inside the town, driven one-way by the recorded forcing.
The client merges the regional and town fields into a
:class:`~tsunami.runner.RunResult`, so ``write_outputs`` and publication work as for a
two-way run.

What differs from the two-way run: the towns do not feed back into the region, so the
regional grids (and through them the other towns) do not see what a town's finer
bathymetry does to the wave. Gauge time series are not recorded, and kinematic ruptures
are refused (the rupture acts on every grid during the run).
"""

from __future__ import annotations

import dataclasses
import resource
import time
from dataclasses import dataclass, field

import xarray as xr

from tsunami.errors import InputError
from tsunami.fanout.forcing import BoundaryRecorder, BoundaryRecording, RecordedParent, Window
from tsunami.fields import merge_finest
from tsunami.model import ShallowWaterModel
from tsunami.nesting import NestedModel
from tsunami.region import Region
from tsunami.runner import RunResult, _provenance, build_model, grid_fields
from tsunami.scenario import FaultSource, Scenario
from tsunami.simulation import Simulation


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
    """What a town's task needs: its grids' models at the initial state (bathymetry and
    surface as in the two-way nest), their (name, parent, ratio) levels under the
    parent, and the parent's recorded forcing."""

    town: str
    models: list[ShallowWaterModel]
    levels: list[tuple[str, str, int]]
    recording: BoundaryRecording
    stop_time: float
    attrs: dict


@dataclass
class RegionalResult:
    """The regional stage's output: regional grids' fields, one :class:`TownTask` per
    town, timings and the peak memory of the process (MB)."""

    fields: dict[str, xr.Dataset]
    tasks: dict[str, TownTask]
    steps: dict[str, int]
    setup_s: float
    simulation_s: float
    peak_memory_mb: float
    grids: dict = field(default_factory=dict)


@dataclass
class TownResult:
    town: str
    fields: dict[str, xr.Dataset]
    steps: dict[str, int]
    simulation_s: float
    cpu_s: float
    peak_memory_mb: float
    worker: str = ""


def regional_stage(region: Region, scenario: Scenario,
                   roots: dict[str, str] | None = None) -> RegionalResult:
    """Build the whole nest, run its regional grids and record each town's forcing."""
    if isinstance(scenario.source, FaultSource) and scenario.source.kinematic:
        raise InputError(scenario.path, "source.kinematic", "a kinematic rupture acts on "
                         "every grid during the run; fan-out needs an instantaneous source")
    start = time.perf_counter()
    region = dataclasses.replace(region, gauges=[])
    subtrees = town_subtrees(region, roots)
    full = build_model(region, scenario, callbacks=[])
    if not isinstance(full, NestedModel):
        raise InputError(region.path, "grid", "fan-out needs nested town grids")
    specs = {g.name: g for g in region.grids}
    town_of = town_of_grids(region, subtrees)
    regional = [(full.by_name[g.name], g.parent, g.ratio) for g in region.grids
                if g.name not in town_of]
    nest = NestedModel(regional, prepare_bathymetry=False)
    recorders = []
    windows: dict[str, dict[str, Window]] = {}
    for town, top in subtrees.items():
        spec = specs[top]
        parent = full.by_name[spec.parent]
        windows.setdefault(spec.parent, {})[town] = Window.of(parent, full.by_name[top],
                                                               spec.ratio)
    for parent_name, by_town in windows.items():
        recorder = BoundaryRecorder(full.by_name[parent_name], by_town)
        nest.after_step.append(recorder)
        recorders.append(recorder)
    setup = time.perf_counter() - start
    simulation = Simulation(nest, scenario.duration)
    simulation.run()
    attrs = _provenance(region, scenario)
    fields = grid_fields(nest.models, attrs, full.covered)
    recordings = {town: rec for r in recorders for town, rec in r.recordings.items()}
    tasks = {}
    for town in subtrees:
        names = [g.name for g in region.grids if town_of.get(g.name) == town]
        levels = [(n, specs[n].parent, specs[n].ratio) for n in names]
        tasks[town] = TownTask(town, [full.by_name[n] for n in names], levels,
                               recordings[town], scenario.duration, attrs)
    return RegionalResult(fields, tasks, {m.grid.name: m.iteration for m in nest.models},
                          setup, simulation.wall_time, _peak_memory_mb(),
                          {m.grid.name: m.grid for m in full.models})


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
    """Run one town's sub-tree driven by its recorded forcing (two-way inside it)."""
    task = regional.tasks[town] if isinstance(regional, RegionalResult) else regional
    wall, cpu = time.perf_counter(), time.process_time()
    stand_in = RecordedParent(task.recording)
    models = {m.grid.name: m for m in task.models}
    nest = NestedModel([(stand_in, None, None)] +
                       [(models[n], p, r) for n, p, r in task.levels],
                       prepare_bathymetry=False)
    # Every step the parent took: in the two-way run the root's last step ends at or past
    # stop_time and the parent's sub-steps finish it, so with time steps that follow the
    # flow the parent's last frame may lie a step or more past stop_time.
    Simulation(nest, max(task.stop_time, task.recording.times[-1])).run()
    fields = grid_fields(task.models, task.attrs, nest.covered)
    return TownResult(task.town, fields, {m.grid.name: m.iteration for m in task.models},
                      time.perf_counter() - wall, time.process_time() - cpu,
                      _peak_memory_mb(), _where())


@dataclass
class FanoutReport:
    """Timings of a fan-out run: the regional stage, each town's task, the whole."""

    regional_s: float
    towns: dict[str, TownResult]
    wall_s: float
    recording_mb: float
    regional_peak_mb: float = 0.0

    def summary(self) -> str:
        lines = [f"fan-out: regional stage {self.regional_s:.1f} s (forcing recorded: "
                 f"{self.recording_mb:.1f} MB), total {self.wall_s:.1f} s wall"]
        for name, t in self.towns.items():
            lines.append(f"  town {name}: {t.simulation_s:.1f} s wall, {t.cpu_s:.1f} s CPU, "
                         f"peak {t.peak_memory_mb:.0f} MB on {t.worker}")
        return "\n".join(lines)


def run_fanout(region: Region, scenario: Scenario, client,
               roots: dict[str, str] | None = None) -> tuple[RunResult, FanoutReport]:
    """Run ``scenario`` on ``region`` with each town's grids as its own Dask task on
    ``client`` (module doc); returns the merged fields and the timings."""
    start = time.perf_counter()
    future = client.submit(regional_stage, region, scenario, roots, pure=False)
    regional: RegionalResult = future.result()
    regional_s = time.perf_counter() - start
    # Each town task gets only its own forcing and grids.
    futures = {town: client.submit(town_stage, client.scatter(task), pure=False)
               for town, task in regional.tasks.items()}
    towns = {town: f.result() for town, f in futures.items()}
    fields = dict(regional.fields)
    steps = dict(regional.steps)
    for t in towns.values():
        fields.update(t.fields)
        steps.update(t.steps)
    order = [g.name for g in region.grids]
    fields = {n: fields[n] for n in order}
    merged = {t.name: merge_finest(fields, regional.grids, t.name, t.extent)
              for t in region.towns}
    wall = time.perf_counter() - start
    timings = {"setup_s": regional.setup_s, "simulation_s": wall - regional.setup_s,
               "regional_s": regional_s,
               **{f"town_{n}_s": t.simulation_s for n, t in towns.items()}}
    result = RunResult(region, scenario, fields, None, merged, timings,
                       {n: steps[n] for n in order})
    recording = sum(t.recording.nbytes for t in regional.tasks.values()) / 1e6
    return result, FanoutReport(regional_s, towns, wall, recording, regional.peak_memory_mb)


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


