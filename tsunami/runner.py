"""From a region and a scenario to written fields: the engine behind ``tsunami run``.

Data flow: :class:`~tsunami.region.Region` + :class:`~tsunami.scenario.Scenario` ->
:func:`build_model` (grids, bathymetry, initial state) -> :class:`~tsunami.simulation.
Simulation` -> :class:`RunResult` (xarray Datasets) -> :func:`write_outputs` (NetCDF and
CSV, the folder written atomically as a whole).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from tsunami import __version__, checks
from tsunami.boundaries import Boundaries, Open, Wall
from tsunami.dem import resample
from tsunami.diagnostics import runup
from tsunami.errors import Finding, InputError, InputWarning, findings_kept
from tsunami.fields import maxima_dataset, merge_finest, write_netcdf
from tsunami.gauges import GaugeRecorder
from tsunami.gauges import write_csv as gauge_csv
from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel, default_scheme
from tsunami.nesting import NestedModel
from tsunami.region import Region
from tsunami.runfolder import SUMMARY, file_record, run_folder
from tsunami.scenario import DisplacementSource, FaultSource, IncidentWaveSource, Scenario
from tsunami.simulation import Simulation
from tsunami.source.kinematic import KinematicRupture
from tsunami.source.sea_surface import fault_sea_surface


@dataclass
class RunResult:
    """What a run produced: maxima per grid, gauge series and timings."""

    region: Region
    scenario: Scenario
    fields: dict[str, xr.Dataset]
    gauges: xr.Dataset | None
    towns: dict[str, xr.Dataset] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    recorder: GaugeRecorder | None = None
    model: object = None
    #: Outer steps taken with each number of kernel threads (tsunami.cores).
    steps_by_threads: dict[int, int] = field(default_factory=dict)
    #: The input warnings the run raised (text as shown; also in run.json), so that a
    #: run whose warnings went by unseen (a fan-out's Dask tasks) still records them.
    input_warnings: list[str] = field(default_factory=list)

    def town_summary(self) -> dict:
        """Headline numbers per town (merged finest-available fields)."""
        return {name: town_figures(ds) for name, ds in self.towns.items()}

    def summary(self) -> dict:
        """Headline numbers per grid over the cells no finer grid covers: maximum
        inundation depth and runup (m), flooded cells."""
        out = {}
        for name, ds in self.fields.items():
            own = ds["covered_by_finer_grid"].values == 0
            depth = np.where(own, ds["max_depth"].values, np.nan)
            out[name] = {
                "max_inundation_depth_m": _nanmax(depth),
                "runup_m": float(ds.attrs.get("runup_m", float("nan"))),
                "inundated_cells": int(np.sum(depth > 0)),
            }
        return out


def town_figures(ds: xr.Dataset) -> dict:
    """Headline numbers of a merged town field: max inundation depth, runup (m), flooded
    area (km2, land with max depth > 0.01 m) and first arrival on land or sea (min)."""
    depth = ds["max_depth"].values
    eta = ds["max_eta"].values
    land = ds["elevation"].values > 0
    flooded = np.nan_to_num(depth) > 0.01
    geographic = "lat" in ds.coords
    x, y = (ds["lon"].values, ds["lat"].values) if geographic else (ds["x"].values,
                                                                    ds["y"].values)
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    grid = Grid(nx=x.size, ny=y.size, x0=x[0] - dx / 2, y0=y[0] - dy / 2, dx=dx, dy=dy,
                crs="EPSG:4326" if geographic else None)
    area = np.broadcast_to(grid.cell_area(), depth.shape)
    return {
        "max_inundation_depth_m": _nanmax(np.where(flooded, depth, np.nan)),
        "runup_m": _nanmax(np.where(land & flooded, eta, np.nan)),
        "flooded_area_km2": float(area[flooded].sum() / 1e6),
        "first_arrival_min": _nanmin(ds["arrival_time"].values) / 60.0,
    }


def build_model(region: Region, scenario: Scenario, callbacks: list | None = None,
                findings: list[Finding] | None = None):
    """Build the model (one grid, or a nest) with bathymetry and initial state.

    A fault source sets the initial surface from its sea-floor displacement on every
    grid. A kinematic rupture also needs to act during the run: its
    :class:`~tsunami.source.kinematic.KinematicRupture` is appended to ``callbacks``,
    which the caller hands to the :class:`~tsunami.simulation.Simulation` (without a list
    a kinematic scenario is refused rather than silently run as instantaneous).

    Before anything runs, :mod:`tsunami.checks` refuses an outer grid without water and
    a source that does not reach it (or has holes where it matters), and warns about
    land and sea that look swapped and towns without land (at once, or appended to
    ``findings``: :func:`~tsunami.errors.input_warning`).
    """
    check_source_frame(region, scenario, callbacks)
    models = build_grids(region, scenario, findings=findings)
    outer = models[region.grids[0].name]
    model = outer if len(models) == 1 else NestedModel(
        [(models[s.name], s.parent, s.ratio) for s in region.grids])
    checks.check_water(region, scenario, outer, findings)
    checks.check_towns(region, model, findings=findings)
    apply_source(model, scenario, callbacks, findings=findings)
    return model


def check_source_frame(region: Region, scenario: Scenario, callbacks: list | None) -> None:
    """Refuse a fault source on a region in a local frame, and a kinematic rupture
    without a ``callbacks`` list to act through (:func:`build_model`)."""
    if isinstance(scenario.source, FaultSource):
        if region.crs is None:
            raise InputError(scenario.path, "source.type",
                             f"a {scenario.source.kind!r} source needs a georeferenced "
                             f"region; region {region.name!r} is in a local frame")
        if scenario.source.kinematic and callbacks is None:
            raise ValueError("a kinematic rupture acts during the run: pass build_model a "
                             "callbacks list for the Simulation")


def build_grids(region: Region, scenario: Scenario, names: list[str] | None = None,
                findings: list[Finding] | None = None) -> dict[str, ShallowWaterModel]:
    """Each grid's model (grid name -> model, in the region's order) with its still
    depth (m) and Manning n, the surface at rest; only ``names`` when given (a town's
    sub-tree in :mod:`tsunami.fanout`). ``findings``: as for :func:`build_model`."""
    numerics = scenario.numerics
    models: dict[str, ShallowWaterModel] = {}
    for spec in region.grids:
        if names is not None and spec.name not in names:
            continue
        grid = region.grid(spec.name)
        elevation = region.elevation(grid, findings)
        depth = scenario.still_water_level - elevation
        if spec.parent is None:
            boundaries = _root_boundaries(spec.boundaries, scenario)
        else:
            boundaries = None  # set by the nest
        scheme = spec.scheme if spec.scheme != "auto" else default_scheme(grid, depth)
        models[spec.name] = ShallowWaterModel(
            grid, depth, manning=region.manning(grid), boundaries=boundaries,
            dtype=np.dtype(numerics.dtype).type, cfl=numerics.cfl,
            dry_depth=numerics.dry_depth, linear_depth=spec.linear_depth,
            max_speed=numerics.max_speed,
            arrival_threshold=scenario.output.arrival_threshold, scheme=scheme)
    return models


def apply_source(model, scenario: Scenario, callbacks: list | None,
                 grids: list[ShallowWaterModel] | None = None,
                 findings: list[Finding] | None = None) -> None:
    """Set the initial surface of ``model`` (one grid or a nest) from the scenario's
    source; a kinematic rupture is appended to ``callbacks`` to act during the run.

    ``grids``: only these of the model's grids (default all). A town's grids under a
    recorded stand-in parent (:mod:`tsunami.fanout`) are set without the check that the
    source reaches the outer grid's water: the regional stage made it. ``findings``: as
    for :func:`build_model` (a harmless hole in a displacement raster).
    """
    grids = list(model.models) if grids is None else grids
    outer = grids[0] is model.models[0]
    source = scenario.source
    if isinstance(source, DisplacementSource):
        displacement = source.read(scenario.path, model.models[0].grid.crs is None)
        uplift = {m.grid.name: resample(displacement, m.grid, method="bilinear")
                  for m in grids}
        uplift = checks.check_source(scenario, model, uplift, displacement, grids=grids,
                                     reach=outer, findings=findings)
        _raise_surface(model, grids, uplift)
    elif isinstance(source, FaultSource):
        _apply_fault(model, grids, scenario, callbacks, outer)
    elif outer:
        checks.check_source(scenario, model)


def _raise_surface(model, grids: list[ShallowWaterModel], uplift: dict[str, np.ndarray]
                   ) -> None:
    """Add each grid's sea-surface displacement (m; NaN, outside a raster, reads as 0)
    to its wet cells."""
    for m in grids:
        m.set(eta=np.where(m.initially_wet, m.eta + np.nan_to_num(uplift[m.grid.name]),
                           m.eta))
    if isinstance(model, NestedModel):
        model.synchronise()


def _apply_fault(model, grids: list[ShallowWaterModel], scenario: Scenario,
                 callbacks: list | None, outer: bool) -> None:
    """Raise the sea surface of each grid's wet cells by the fault's sea-surface
    displacement (Okada, Tanioka-Satake and Kajiura with the grid's own still depth), at
    once or, for a kinematic rupture, through a callback; either way, on the outer grid,
    once the complete displacement has been checked to reach its water."""
    source = scenario.source
    if source.kinematic:
        rupture = KinematicRupture(grids, source.subfaults,
                                   tanioka_satake=source.tanioka_satake,
                                   kajiura=source.kajiura)
        if outer:
            name = grids[0].grid.name
            checks.check_source(scenario, model, {name: rupture.static_uplift(name)})
        rupture.start(model)
        callbacks.append(rupture)
        return
    uplift = {m.grid.name: fault_sea_surface(source.subfaults, m.grid, m.h.astype(np.float64),
                                             tanioka_satake=source.tanioka_satake,
                                             kajiura=source.kajiura)
              for m in grids}
    if outer:
        uplift = checks.check_source(scenario, model, uplift)
    _raise_surface(model, grids, uplift)


def _root_boundaries(sides: dict[str, str], scenario: Scenario) -> Boundaries:
    conditions = {s: (Wall() if kind == "wall" else Open()) for s, kind in sides.items()}
    if isinstance(scenario.source, IncidentWaveSource):
        conditions[scenario.source.side] = scenario.source.wave
    return Boundaries(**conditions)


def run(region: Region, scenario: Scenario, progress: bool = False,
        callbacks: list | tuple = ()) -> RunResult:
    """Run ``scenario`` on ``region`` and return its fields (nothing is written).
    ``callbacks`` are called with the model after every step, after the run's own (a
    service checks there whether a newer forecast supersedes this one: raising stops the
    run)."""
    timings = {}
    start = time.perf_counter()
    extra, callbacks = list(callbacks), []  # a kinematic rupture first, so gauges see the
    # surface it raised
    findings: list[Finding] = []
    # A failure keeps the findings for a caller that shows them (a sweep's worker).
    with findings_kept(findings):
        try:
            model = build_model(region, scenario, callbacks=callbacks, findings=findings)
        finally:  # a warning may say why the input was refused (land and sea swapped)
            for finding in findings:
                warnings.warn(str(finding), InputWarning, stacklevel=2)
        timings["setup_s"] = time.perf_counter() - start
        recorder = None
        if region.gauges:
            recorder = GaugeRecorder(model, region.gauges, scenario.output.gauge_interval)
            callbacks.append(recorder)
        simulation = Simulation(model, scenario.duration, callbacks=callbacks + extra,
                                progress=progress,
                                description=f"{scenario.name} on {region.name}")
        simulation.run()
        timings["simulation_s"] = simulation.wall_time
        attrs = _provenance(region, scenario)
        fields = grid_fields(model.models, attrs, model.covered)
        grids = {m.grid.name: m.grid for m in model.models}
        towns = {t.name: merge_finest(fields, grids, t.name, t.extent) for t in region.towns}
        gauges = recorder.to_dataset(attrs) if recorder is not None else None
        steps = {m.grid.name: m.iteration for m in model.models}
        return RunResult(region, scenario, fields, gauges, towns, timings, steps, recorder, model,
                         dict(simulation.steps_by_threads), [str(f) for f in findings])


def grid_fields(models, attrs: dict, covered) -> dict[str, xr.Dataset]:
    """Each model's maxima as a Dataset (grid name -> Dataset) with its runup (m) over the
    cells no finer grid covers; ``covered(model)`` gives those cells' mask."""
    fields = {}
    for m in models:
        mask = covered(m)
        ds = maxima_dataset(m, attrs, mask)
        ds.attrs["runup_m"] = runup(m, mask=~mask)
        fields[m.grid.name] = ds
    return fields


def _provenance(region: Region, scenario: Scenario) -> dict:
    attrs = {
        "source": f"tsunami {__version__} (nonlinear shallow-water; staggered leapfrog and "
                  "second-order finite volumes)",
        # File names only: these attributes travel into published products, which must
        # not carry the local paths of the machine that ran them (run.json has the paths).
        "region": region.name, "region_file": _name(region.path),
        "scenario": scenario.name, "scenario_file": _name(scenario.path),
        "history": f"created {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        "still_water_level_m": scenario.still_water_level,
    }
    if scenario.origin_time is not None:
        attrs["origin_time"] = scenario.origin_time.isoformat().replace("+00:00", "Z")
    attrs["source_type"] = scenario.source_type
    if isinstance(scenario.source, FaultSource):
        for key, value in scenario.source.fault.metadata.items():
            attrs[f"fault_{key}"] = value if isinstance(value, str) else f"{value:.6g}"
    return attrs


def _name(path: Path | None) -> str:
    return Path(path).name if path else ""


def write_outputs(result: RunResult, out_dir: str | Path) -> list[Path]:
    """Write fields (NetCDF per grid), gauges (NetCDF + CSV) and ``run.json``.

    The folder is written as a whole (:mod:`tsunami.runfolder`): built beside ``out_dir``,
    flushed to disk and renamed into place, replacing an earlier run's folder, so it never
    mixes two runs and an interrupted run leaves the previous folder intact. ``run.json``
    lists every file with its size and SHA-256. Returns the paths in ``out_dir``.
    """
    with run_folder(out_dir) as folder:
        written = []
        for name, ds in result.fields.items():
            written.append(write_netcdf(ds, folder / f"fields_{name}.nc"))
        for name, ds in result.towns.items():
            written.append(write_netcdf(ds, folder / f"town_{name}.nc"))
        if result.gauges is not None:
            written.append(write_netcdf(result.gauges, folder / "gauges.nc"))
            written.append(gauge_csv(result.gauges, folder / "gauges.csv"))
        origin = result.scenario.origin_time
        summary = {
            "region": result.region.name, "scenario": result.scenario.name,
            "region_file": str(result.region.path.resolve()) if result.region.path else None,
            "source_type": result.scenario.source_type,
            "origin_time": origin.isoformat().replace("+00:00", "Z") if origin else None,
            "simulated_time_s": result.scenario.duration, "timings_s": result.timings,
            "steps": result.steps, "grids": result.summary(),
            "towns": result.town_summary(), "input_warnings": result.input_warnings,
            "files": [file_record(p) for p in written],
        }
        path = folder / SUMMARY
        with open(path, "w") as f:
            json.dump(summary, f, indent=2, default=float)
        written.append(path)
    return [Path(out_dir) / p.name for p in written]


def _nanmin(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else float("nan")


def _nanmax(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else float("nan")
