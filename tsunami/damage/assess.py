"""Damage and casualty assessment of a forecast field: the engine behind :func:`assess`.

Data flow: town field(s) + buildings (+ population, districts) -> per-building demand
sampling -> fragility (nested P(DS >= k)) -> expected counts and Monte Carlo ranges per
town, district and output cell -> people by depth class and casualties ->
:class:`DamageResult` (``.buildings``, ``.summary``, ``.write()``).

Every number published here is a PLANNING ESTIMATE under the assumptions listed in
``summary["assumptions"]``.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio.features
import rasterio.warp
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from tsunami import __version__
from tsunami.assets import Asset
from tsunami.damage import casualty as cas
from tsunami.damage.exposure import (
    Population,
    load_buildings,
    load_districts,
    load_population,
    normalise_buildings,
    normalise_districts,
)
from tsunami.damage.field import TownField
from tsunami.damage.fragility import (
    DEFAULT_SOURCE,
    DEMANDS,
    N_STATES,
    STATE_LABELS,
    CurveSet,
    FragilityTable,
    expected_state,
    load_fragility,
    state_probabilities,
)
from tsunami.damage.geometry import to_crs, transformer
from tsunami.damage.output import write_result
from tsunami.damage.uncertainty import MonteCarlo, count_ranges
from tsunami.errors import InputError
from tsunami.localtime import is_night, resolve_timezone

TownInput = xr.Dataset | str | Path | TownField


@dataclass(frozen=True)
class DamageParameters:
    """Choices of the damage assessment (units in the names).

    - ``fragility``: path of a fragility CSV (None: the shipped Suppasri et al. 2013 table);
      ``fragility_source``: its ``source_id`` to use; ``fragility_scheme``: "storeys"
      (by-storey curves where the source has them, else by material) or "material".
    - ``severe_state``: the damage state counted as "severe" in the rasters and summary
      (default 4: complete damage, collapse or washed away).
    - ``cell_size_m`` and ``output_crs``: the aggregation grid of the GeoTIFFs. Default
      CRS: the field's when projected, else the UTM zone of the town's centre (pass the
      region's ``output_crs``, e.g. EPSG:6680 for Hokkaido west, to follow prefectural
      practice). Cell edges are multiples of ``cell_size_m``.
    - ``draws``, ``seed``, ``quantiles``: the Monte Carlo of the count ranges.
    - ``outside``: "error" (default) or "drop" for buildings outside the forecast field.
    - ``population_weighting``: "buildings" (spread each census cell's people over the
      buildings in it, by count; land cells where it has none) or "land" (over land
      cells).
    - ``scenario_weights``: weights of the fields of a sweep (None: equal).
    - ``buildings_crs``: CRS of the buildings GeoPackage (None: the input's).
    - ``partition_size``: inventories of more buildings are split into spatial partitions
      of about this many (whole blocks of output cells) and assessed in parallel with
      Dask; ``dask_scheduler`` picks the scheduler (None: an active
      ``dask.distributed.Client``, else threads; or "threads", "processes",
      "synchronous"); ``progress`` shows a progress bar over partitions (local
      schedulers). The results do not depend on the partitioning.
    - ``water_density`` (kg/m3) and ``drag_coefficient``: the drag force per unit width
      F = rho C_D h u^2 / 2 (kN/m) of curves with the ``hydrodynamic_force`` demand; set
      them to the values the curves were fitted with.
    - ``timezone``: IANA time zone of the place (None: Asia/Tokyo inside Japan, else UTC
      with a warning); the origin time in local time decides night or day for the
      casualties (unless ``casualty.night`` is given) and is shown on the maps.
    """

    fragility: str | None = None
    fragility_source: str = DEFAULT_SOURCE
    fragility_scheme: str = "storeys"
    severe_state: int = 4
    cell_size_m: float = 100.0
    output_crs: str | None = None
    draws: int = 1000
    seed: int = 1993
    quantiles: tuple[float, float] = (0.05, 0.95)
    outside: str = "error"
    population_weighting: str = "buildings"
    casualty: cas.CasualtyParameters = field(default_factory=cas.CasualtyParameters)
    scenario_weights: tuple[float, ...] | None = None
    buildings_crs: str | None = None
    partition_size: int = 250_000
    dask_scheduler: str | None = None
    progress: bool = False
    water_density: float = 1025.0
    drag_coefficient: float = 1.0
    timezone: str | None = None

    def __post_init__(self) -> None:
        if self.fragility_scheme not in ("storeys", "material"):
            raise ValueError("fragility_scheme must be 'storeys' or 'material'")
        if not 1 <= self.severe_state <= N_STATES:
            raise ValueError(f"severe_state must be 1..{N_STATES}")
        if self.outside not in ("error", "drop"):
            raise ValueError("outside must be 'error' or 'drop'")
        if self.population_weighting not in ("buildings", "land"):
            raise ValueError("population_weighting must be 'buildings' or 'land'")
        if self.partition_size < 1:
            raise ValueError("partition_size must be at least 1")
        if self.water_density <= 0 or self.drag_coefficient <= 0:
            raise ValueError("water_density and drag_coefficient must be positive")
        if self.cell_size_m <= 0 or self.draws < 10:
            raise ValueError("cell_size_m must be positive and draws at least 10")
        lo, hi = self.quantiles
        if not 0 <= lo < hi <= 1:
            raise ValueError("quantiles must satisfy 0 <= low < high <= 1")


@dataclass
class CellGrid:
    """The aggregation grid of the rasters: north-up, ``size`` m cells in ``crs``.

    ``layers[name] = (array (ny, nx) float32 with NaN no-data, rows north first,
    description, units)``.
    """

    crs: CRS
    x0: float  # west edge
    y1: float  # north edge
    size: float
    shape: tuple[int, int]
    layers: dict[str, tuple[np.ndarray, str, str]] = field(default_factory=dict)
    occupied: np.ndarray | None = None  # cells holding buildings

    @property
    def transform(self) -> Affine:
        return Affine(self.size, 0.0, self.x0, 0.0, -self.size, self.y1)

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index (row-major, north row first) or -1."""
        ny, nx = self.shape
        col = np.floor((x - self.x0) / self.size).astype(np.int64)
        row = np.floor((self.y1 - y) / self.size).astype(np.int64)
        ok = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
        return np.where(ok, row * nx + col, -1)


@dataclass
class DamageResult:
    """What :func:`assess` found.

    ``buildings``: GeoDataFrame, one row per input building (see ``write`` for columns);
    ``summary``: JSON-ready dict (town, districts, assumptions, parameters);
    ``grid``: the per-cell layers; ``field``: the (first) forecast field.
    """

    name: str
    buildings: gpd.GeoDataFrame | None
    summary: dict
    grid: CellGrid | None
    field: TownField
    params: DamageParameters
    districts: gpd.GeoDataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)  # wall s per stage

    def write(self, folder: str | Path, name: str | None = None,
              forecast: dict[str, str] | None = None) -> list[Asset]:
        """Write every product into ``folder`` (each file atomically; names start with
        ``name``, default the town's) and return them as :class:`Asset` (path, STAC role,
        media type, title). ``forecast``: the identity of the forecast (``event_id``,
        ``forecast_number``, ``issue_time``, ...) that every file then carries. See
        :mod:`tsunami.damage.output` for the files."""
        return write_result(self, Path(folder), name or self.name, forecast or {})


# -- helpers ------------------------------------------------------------------------------

def _as_fields(town: TownInput | Sequence[TownInput]) -> list[TownField]:
    if isinstance(town, xr.Dataset | str | Path | TownField):
        town = [town]
    fields = [t if isinstance(t, TownField) else TownField.from_dataset(t) for t in town]
    if not fields:
        raise InputError(None, "town", "no forecast field given")
    return fields


def _output_crs(params: DamageParameters, f: TownField) -> CRS:
    if params.output_crs:
        crs = CRS.from_user_input(params.output_crs)
        if not crs.is_projected:
            raise InputError(None, "output_crs", f"{params.output_crs} is not a projected CRS "
                             "(metre cells need one)")
        return crs
    if f.crs.is_projected:
        return f.crs
    w, s, e, n = rasterio.warp.transform_bounds(f.crs, "EPSG:4326", *f.bounds)
    lon, lat = (w + e) / 2, (s + n) / 2
    info = query_utm_crs_info(datum_name="WGS 84",
                              area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    return CRS.from_epsg(int(info[0].code))


def _cell_grid(params: DamageParameters, f: TownField) -> CellGrid:
    crs = _output_crs(params, f)
    w, s, e, n = rasterio.warp.transform_bounds(f.crs, crs, *f.bounds, densify_pts=21)
    size = params.cell_size_m
    x0, y0 = np.floor(w / size) * size, np.floor(s / size) * size
    x1, y1 = np.ceil(e / size) * size, np.ceil(n / size) * size
    return CellGrid(crs, float(x0), float(y1), size,
                    (round((y1 - y0) / size), round((x1 - x0) / size)))


def _group_sum(index: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (n, ...) per group (index -1 ignored): shape (n_groups, ...)."""
    ok = index >= 0
    out = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(out, index[ok], values[ok])
    return out


def _interval(mean: float, lo: float, hi: float) -> dict:
    """A published central value with its range; the range is widened to contain the
    central value (a discrete 5-95 % interval of a small count, e.g. [0, 0] for a 3 %
    chance of one building, can exclude a fractional mean)."""
    return {"expected": round(float(mean), 3), "p05": round(float(min(lo, mean)), 3),
            "p95": round(float(max(hi, mean)), 3)}


# -- the assessment -----------------------------------------------------------------------

def assess(town: TownInput | Sequence[TownInput],
           buildings: gpd.GeoDataFrame | str | Path | None = None,
           population: Population | str | Path | None = None,
           districts: gpd.GeoDataFrame | str | Path | None = None,
           params: DamageParameters | None = None) -> DamageResult:
    """Building damage and casualties of one forecast (or a sweep of forecasts).

    ``town``: a town field (Dataset as written to ``town_<name>.nc``, its path, or a
    :class:`TownField`), or a sequence of them for a scenario sweep (their spread is
    included in the ranges; weights in ``params.scenario_weights``). ``buildings``,
    ``population``, ``districts``: loaded objects or file paths (see
    :func:`load_buildings`, :func:`load_population`, :func:`load_districts`).

    Returns a :class:`DamageResult`: ``buildings`` (one row per input building: sampled
    depth m, speed m/s, momentum flux m3/s2, arrival min, P(DS = 0..6), expected state),
    ``summary`` (per town and district: expected buildings per state and at or above each
    state with 5-95 % ranges; people per depth class, people caught, casualties expected /
    low / high; every assumption and parameter) and ``grid`` (per-cell layers).

    Raises :class:`InputError` for exposure outside the field (unless ``params.outside``
    is "drop"), missing CRSs, unknown structure types, and curves whose demand the field
    lacks.
    """
    params = params or DamageParameters()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    fields = _as_fields(town)
    f0 = fields[0]
    n_scen = len(fields)
    weights = np.ones(n_scen) if params.scenario_weights is None else np.asarray(
        params.scenario_weights, dtype=np.float64)
    if weights.shape != (n_scen,) or (weights < 0).any() or weights.sum() <= 0:
        raise InputError(None, "scenario_weights", f"need {n_scen} non-negative weights")
    weights = weights / weights.sum()
    table = load_fragility(params.fragility)
    if params.fragility_source not in table.source_ids():
        raise InputError(table.path, "source_id", f"no curves from {params.fragility_source!r};"
                         f" the table has {table.source_ids()}")
    if isinstance(buildings, str | Path):
        buildings = load_buildings(buildings)
    elif buildings is not None:
        buildings = normalise_buildings(buildings)
    if isinstance(population, str | Path):
        population = load_population(population)
    if isinstance(districts, str | Path):
        districts = load_districts(districts)
    elif districts is not None and "district" not in districts.columns:
        districts = normalise_districts(districts)
    grid = _cell_grid(params, f0)
    timings["inputs_s"] = time.perf_counter() - start
    summary: dict = {
        "title": f"building damage and casualty estimate for {f0.name} (planning estimate)",
        "town": f0.name,
        "software": f"tsunami {__version__}",
        "forecast": [{k: t.attrs.get(k) for k in ("scenario", "region", "origin_time",
                                                    "history", "source")
                      if t.attrs.get(k) is not None}
                     | {"file": Path(t.source).name, "weight": float(w)}
                     for t, w in zip(fields, weights, strict=True)],
        "assumptions": [],
    }
    params = _time_of_day(params, f0, summary, people=population is not None)
    summary["parameters"] = _parameters_dict(params)
    district_names = list(districts["district"]) if districts is not None else []
    n_d = len(district_names)
    town_area: dict = {}
    district_areas: list[dict] = [{} for _ in range(n_d)]
    bld_out = None
    b_state = None
    if buildings is not None:
        bld_out, b_state = _assess_buildings(fields, weights, buildings, districts, table,
                                             params, grid, summary, town_area, district_areas,
                                             timings)
    if population is not None:
        start = time.perf_counter()
        _assess_people(fields, weights, population, districts, params, b_state, summary,
                       town_area, district_areas)
        timings["people_s"] = time.perf_counter() - start
    summary["assumptions"] += params.casualty.assumptions() if population is not None else []
    summary["town_summary"] = town_area
    summary["districts"] = {name: area for name, area in zip(district_names, district_areas,
                                                            strict=True)}
    _fill_grid_validity(grid, f0)
    return DamageResult(f0.name, bld_out, summary, grid, f0, params, districts, timings)


def _time_of_day(params: DamageParameters, f: TownField, summary: dict, people: bool
                 ) -> DamageParameters:
    """Local time of the origin (``summary["local_time"]``) and, unless given, night or
    day for the casualty estimate from it (a warning for ``people`` without origin)."""
    w, s, e, n = rasterio.warp.transform_bounds(f.crs, "EPSG:4326", *f.bounds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tz = resolve_timezone(params.timezone, (w + e) / 2, (s + n) / 2)
    summary.setdefault("warnings", []).extend(str(c.message) for c in caught)
    for c in caught:
        warnings.warn(str(c.message), stacklevel=4)
    cas_params = params.casualty
    start, end = cas_params.night_hours
    local: dict = {"timezone": tz.key, "night_hours": f"{start:02d}:00-{end:02d}:00 local"}
    origin = f.attrs.get("origin_time")
    night = cas_params.night
    if origin:
        moment = datetime.fromisoformat(str(origin).replace("Z", "+00:00"))
        local["origin_time_local"] = moment.astimezone(tz).isoformat()
        if night is None:
            night = is_night(moment, tz, cas_params.night_hours)
            local["time_of_day"] = (f"{'night' if night else 'day'}: origin "
                                    f"{moment.astimezone(tz):%H:%M %Z}")
    elif night is None:
        night = False
        local["time_of_day"] = "day (assumed: the forecast has no origin time)"
        if people:
            summary["warnings"].append("the forecast field has no origin_time: casualties "
                                       "assume daytime (the range covers night)")
    if "time_of_day" not in local:
        local["time_of_day"] = f"{'night' if night else 'day'} (given)"
    summary["local_time"] = local
    if not summary["warnings"]:
        del summary["warnings"]
    return replace(params, casualty=replace(cas_params, night=night))


def _parameters_dict(params: DamageParameters) -> dict:
    d = asdict(params)
    d["casualty"]["groups"] = [asdict(g) for g in params.casualty.groups]
    if params.fragility:
        d["fragility"] = Path(params.fragility).name  # no local paths in published files
    return d


@dataclass(frozen=True)
class _Shared:
    """What every partition of the building stage reads (sent once to Dask workers)."""

    fields: list[TownField]
    weights: np.ndarray
    sets: list[CurveSet]
    b_crs: CRS
    mc: MonteCarlo
    params: DamageParameters


def _partitions(chunk: np.ndarray, n_chunks: int, size: int
                ) -> list[tuple[np.ndarray, range, bool]]:
    """Split the inventory into runs of whole Monte Carlo chunks of about ``size``
    buildings: (rows, chunks, holds the off-grid rows) per partition."""
    order = np.argsort(chunk, kind="stable")  # off-grid rows (chunk -1) first
    # rows of shifted id j (0: off grid, j >= 1: chunk j - 1) are order[ends[j]:ends[j+1]]
    ends = np.concatenate([[0], np.cumsum(np.bincount(chunk + 1, minlength=n_chunks + 1))])
    parts = []
    # no partition for an empty off-grid group (unless there is nothing else)
    j0 = 0 if ends[1] > 0 or n_chunks == 0 else 1
    while j0 <= n_chunks:
        j1 = j0 + 1
        while j1 <= n_chunks and ends[j1 + 1] - ends[j0] <= size:
            j1 += 1
        parts.append((order[ends[j0]:ends[j1]], range(max(j0, 1) - 1, j1 - 1), j0 == 0))
        j0 = j1
    return parts


def _demand(cs: CurveSet, values: dict[str, np.ndarray], rows: np.ndarray,
            params: DamageParameters, source: str) -> np.ndarray:
    """The demand of curve set ``cs`` at ``rows``, in the curve's units."""
    var = DEMANDS[cs.demand][1]
    if var not in values:
        raise InputError(source, var, f"curve {cs.key} needs {var}, which the forecast "
                         "field lacks")
    x = values[var][rows]
    if cs.demand == "hydrodynamic_force":
        # drag force per unit width, F = rho C_D h u^2 / 2, from the maximum of h u^2
        x = 0.5 * params.water_density * params.drag_coefficient * x / 1000.0
    return x


def _assess_partition(shared: _Shared, geoms: np.ndarray, rep: np.ndarray,
                      curve: np.ndarray, count: np.ndarray, district: np.ndarray,
                      cell: np.ndarray, chunks: range, off_grid: bool) -> dict:
    """Sampling, fragility and Monte Carlo of one partition of the inventory (pure:
    what it returns depends on its arguments only). ``rep``: the buildings'
    representative points in their CRS."""
    fields, n = shared.fields, geoms.size
    exceed = np.full((len(fields), n, N_STATES), np.nan)
    sampled, field_cells = [], []
    inside = np.ones(n, dtype=bool)
    transformed: dict[str, np.ndarray] = {}
    rows_of_set = [np.flatnonzero(curve == j) for j in range(len(shared.sets))]
    for s_i, f in enumerate(fields):
        key = f.crs.to_wkt()
        if key not in transformed:
            transformed[key] = to_crs(geoms, shared.b_crs, f.crs)
        values, fcell, ins = f.sample(transformed[key],
                                      rep if f.crs == shared.b_crs else None)
        sampled.append(values)
        field_cells.append(fcell)
        inside &= ins
        for cs, rows in zip(shared.sets, rows_of_set, strict=True):
            exceed[s_i, rows] = cs.exceedance(_demand(cs, values, rows, shared.params,
                                                      f.source))
    exceed[:, ~inside] = np.nan
    resolved = inside & np.all(np.isfinite(exceed[:, :, 0]), axis=0)
    idx = np.flatnonzero(resolved)
    counts = shared.mc.simulate(np.nan_to_num(exceed[:, idx]), count[idx], district[idx],
                                cell[idx], chunks, off_grid)
    mixed = np.einsum("s,snk->nk", shared.weights, np.nan_to_num(exceed))
    mixed[~resolved] = np.nan
    return {"sampled": sampled, "field_cells": field_cells, "inside": inside,
            "resolved": resolved, "mixed": mixed, "counts": counts}


def _run_partitions(shared: _Shared, tasks: list[tuple], params: DamageParameters
                    ) -> list[dict]:
    """Run the partitions: in this process if there is one, else with Dask (the
    scheduler of ``params.dask_scheduler``; None: a distributed Client if one is active,
    else threads)."""
    if len(tasks) == 1:
        return [_assess_partition(shared, *tasks[0])]
    import dask
    from tqdm.dask import TqdmCallback

    # one graph node for the shared inputs, named rather than hashed (fields are large)
    shared_node = dask.delayed(shared, name=f"damage-shared-{uuid.uuid4().hex}",
                               traverse=False)
    nodes = [dask.delayed(_assess_partition, pure=False)(shared_node, *t) for t in tasks]
    with TqdmCallback(desc="damage partitions", disable=not params.progress):
        return list(dask.compute(*nodes, scheduler=params.dask_scheduler))


def _assess_buildings(fields, weights, buildings, districts, table: FragilityTable,
                      params: DamageParameters, grid: CellGrid, summary: dict,
                      town_area: dict, district_areas: list[dict], timings: dict):
    start = time.perf_counter()
    src = buildings.attrs.get("source", "buildings")
    n = len(buildings)
    geoms = np.asarray(buildings.geometry.values)
    b_crs = CRS.from_user_input(buildings.crs)
    # curve set per building class
    structure = buildings["structure"].to_numpy(dtype=str)
    storeys = buildings["storeys"].to_numpy(dtype=np.int64)
    count = buildings["count"].to_numpy(dtype=np.int64)
    keys = np.char.add(np.char.add(structure, "|"), np.minimum(storeys, 3).astype(str))
    uniq, inverse = np.unique(keys, return_inverse=True)
    sets = []
    for k in uniq:
        s, st = k.split("|")
        sets.append(table.select(s, int(st), params.fragility_scheme, params.fragility_source))
    # districts (representative point inside the polygon; first match) and output cells
    rep_points = shapely.point_on_surface(geoms)
    district = np.full(n, -1, dtype=np.int64)
    if districts is not None:
        pts = gpd.GeoDataFrame(geometry=rep_points, crs=b_crs)
        joined = gpd.sjoin(pts.to_crs(districts.crs), districts[["geometry"]],
                           predicate="within", how="inner")
        joined = joined[~joined.index.duplicated(keep="first")]
        district[joined.index.to_numpy()] = joined["index_right"].to_numpy()
    rep = to_crs(rep_points, b_crs, grid.crs)
    cell = grid.locate(shapely.get_x(rep), shapely.get_y(rep))
    # Monte Carlo cells: those holding buildings, numbered compactly
    occupied = np.unique(cell[cell >= 0])
    cell_compact = np.where(cell >= 0, np.searchsorted(occupied, cell), -1)
    mc = MonteCarlo(weights, occupied.size, len(district_areas), params.severe_state,
                    params.draws, params.seed, params.quantiles)
    parts = _partitions(mc.chunk_of(cell_compact), mc.n_chunks, params.partition_size)
    timings["plan_s"] = time.perf_counter() - start
    start = time.perf_counter()
    shared = _Shared(fields, weights, sets, b_crs, mc, params)
    results = _run_partitions(shared, [(geoms[r], rep_points[r], inverse[r], count[r],
                                        district[r], cell_compact[r], chunks, off)
                                       for r, chunks, off in parts], params)
    n_scen = len(fields)
    inside_all = np.zeros(n, dtype=bool)
    resolved = np.zeros(n, dtype=bool)
    mixed = np.empty((n, N_STATES))
    sampled = [{v: np.empty(n) for v in res} for res in results[0]["sampled"]]
    field_cells = [np.empty(n, dtype=np.int64) for _ in range(n_scen)]
    for (rows, _, _), res in zip(parts, results, strict=True):
        inside_all[rows] = res["inside"]
        resolved[rows] = res["resolved"]
        mixed[rows] = res["mixed"]
        for s_i in range(n_scen):
            field_cells[s_i][rows] = res["field_cells"][s_i]
            for v, arr in res["sampled"][s_i].items():
                sampled[s_i][v][rows] = arr
    sim = MonteCarlo.combine([res["counts"] for res in results])
    timings["partitions_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if not inside_all.all():
        out_idx = np.flatnonzero(~inside_all)
        first = rep_points[out_idx[0]]
        message = (f"{out_idx.size} of {n} building(s) lie outside the forecast field "
                   f"{fields[0].name!r} (bounds {tuple(round(b, 6) for b in fields[0].bounds)}"
                   f" in {fields[0].crs.to_string()}) or on cells no forecast grid covers; "
                   f"first: row {out_idx[0] + 1}, id {buildings['building_id'].iloc[out_idx[0]]}"
                   f" at ({first.x:.6f}, {first.y:.6f}) in {b_crs.to_string()}")
        if params.outside == "error":
            raise InputError(src, "geometry", message)
        warnings.warn(f"{src}: {message}; dropped", stacklevel=3)
        summary.setdefault("warnings", []).append(message + "; dropped")
    on_sea = inside_all & ~resolved
    if on_sea.any():
        summary.setdefault("warnings", []).append(
            f"{int(on_sea.sum())} building(s) stand on cells the model treats as sea with no "
            "land cell around them; they are left out of the damage counts")
    p_state = state_probabilities(mixed)
    e_state = expected_state(mixed)
    # per-building table
    out = gpd.GeoDataFrame({"bldg_id": buildings["building_id"].to_numpy(),
                            "structure": structure, "storeys": storeys, "count": count,
                            "defaulted": buildings["defaulted"].to_numpy()},
                           geometry=buildings.geometry.values, crs=buildings.crs)
    out["curve"] = np.array([cs.key for cs in sets], dtype=object)[inverse]
    depth = np.stack([v["max_depth"] for v in sampled])

    def wmean(a: np.ndarray) -> np.ndarray:
        """Weighted mean over scenarios (axis 0)."""
        return np.einsum("s,sn->n", weights, a) if n_scen > 1 else a[0]

    for col, var, scale in (("depth_m", "max_depth", 1.0), ("speed_m_s", "max_speed", 1.0),
                            ("mflux_m3s2", "max_momentum_flux", 1.0),
                            ("arrive_min", "arrival_time", 1 / 60.0)):
        if all(var in v for v in sampled):
            out[col] = wmean(np.stack([v[var] for v in sampled])) * scale
    out["dep_min_m"] = depth.min(axis=0)
    out["dep_max_m"] = depth.max(axis=0)
    for k in range(N_STATES + 1):
        out[f"p_ds{k}"] = p_state[:, k]
    out[f"p_ds{params.severe_state}plus"] = mixed[:, params.severe_state - 1]
    out["exp_ds"] = e_state
    out["likely_ds"] = np.where(resolved, np.argmax(np.nan_to_num(p_state), axis=1), -1)
    out["status"] = np.where(resolved, "assessed", np.where(inside_all, "on_sea_cell",
                                                            "outside"))
    if districts is not None:
        out["district"] = np.where(district >= 0,
                                   districts["district"].to_numpy(dtype=object)[
                                       np.maximum(district, 0)], None)
    if params.buildings_crs:
        out = out.to_crs(params.buildings_crs)
    # expected counts and ranges per area
    wp = p_state * count[:, None]
    wp[~resolved] = 0.0
    q_state, q_least = count_ranges(sim["town"], params.quantiles)
    town_area["buildings"] = _building_area(
        wp.sum(axis=0), q_state, q_least, count, resolved, on_sea, inside_all,
        buildings["defaulted"].to_numpy(), e_state, np.ones(n, dtype=bool))
    if district_areas:
        exp_d = _group_sum(district, len(district_areas), wp)
        qs_d, ql_d = count_ranges(sim["districts"], params.quantiles)
        for g, area in enumerate(district_areas):
            sel = district == g
            area["buildings"] = _building_area(exp_d[g], qs_d[g], ql_d[g], count, resolved,
                                               on_sea, inside_all,
                                               buildings["defaulted"].to_numpy(), e_state, sel)
    # rasters
    ny, nx = grid.shape
    flat = ny * nx
    on_grid = inside_all & (cell >= 0)
    use = resolved & (cell >= 0)
    exposed = np.bincount(cell[on_grid], weights=count[on_grid], minlength=flat)
    severe = np.bincount(cell[use], weights=(mixed[:, params.severe_state - 1] * count)[use],
                         minlength=flat)
    washed = np.bincount(cell[use], weights=(mixed[:, N_STATES - 1] * count)[use],
                         minlength=flat)
    q = sim["cell_quantiles"]  # (occupied, 2 layers, 2 quantiles)
    ranges = np.zeros((flat, 2, 2))
    ranges[occupied] = q
    ks = params.severe_state
    grid.layers["buildings"] = (exposed.reshape(ny, nx), "buildings in the cell (exposure)",
                                "buildings")
    grid.layers[f"ds{ks}plus_expected"] = (
        severe.reshape(ny, nx), f"expected buildings reaching DS{ks} or worse", "buildings")
    grid.layers[f"ds{ks}plus_p05"] = (np.minimum(ranges[:, 0, 0], severe).reshape(ny, nx),
                                      f"5th percentile of buildings at DS{ks}+", "buildings")
    grid.layers[f"ds{ks}plus_p95"] = (np.maximum(ranges[:, 0, 1], severe).reshape(ny, nx),
                                      f"95th percentile of buildings at DS{ks}+", "buildings")
    grid.layers["washed_away_expected"] = (washed.reshape(ny, nx),
                                           "expected buildings washed away (DS6)", "buildings")
    grid.layers["washed_away_p05"] = (np.minimum(ranges[:, 1, 0], washed).reshape(ny, nx),
                                      "5th percentile of buildings washed away", "buildings")
    grid.layers["washed_away_p95"] = (np.maximum(ranges[:, 1, 1], washed).reshape(ny, nx),
                                      "95th percentile of buildings washed away", "buildings")
    grid.occupied = exposed.reshape(ny, nx) > 0
    timings["aggregates_s"] = time.perf_counter() - start
    summary["fragility"] = {
        "table": Path(table.path).name,
        "source_id": params.fragility_source,
        "scheme": params.fragility_scheme,
        "curves_used": {cs.key: {"citation": cs.citation, "verification": cs.verification,
                                 "demand": cs.demand,
                                 "buildings": int(count[inverse == j].sum())}
                        for j, cs in enumerate(sets)},
    }
    summary["assumptions"] += [
        "damage: P(DS >= k) = Phi((ln x - mu_k)/sigma_k) with the curves listed under "
        "'fragility'; nesting enforced by cumulative clipping",
        "sampling: points take their cell; footprints the worst water over the cells they "
        "touch; buildings on model sea cells take the worst land cell of the 3 x 3 block",
        f"missing attributes: {buildings.attrs.get('defaults', 'defaults')}",
        f"ranges: {params.quantiles[0]:.0%}-{params.quantiles[1]:.0%} of {params.draws} Monte "
        "Carlo draws of independent building outcomes"
        + (" and of the scenario (by weight)" if len(fields) > 1 else "")
        + "; widened to contain the expected value",
        f"rasters: {params.cell_size_m:g} m cells in {grid.crs.to_string()}",
    ]
    return out, {"cell": field_cells, "count": count, "resolved": resolved,
                 "district": district, "sampled": sampled}


def _building_area(expected: np.ndarray, q_state: np.ndarray, q_least: np.ndarray,
                   count, resolved, on_sea, inside, defaulted, e_state, sel) -> dict:
    at_least = np.flip(np.cumsum(np.flip(expected)))
    w = count * sel
    assessed = float((w * resolved).sum())
    return {
        "total": int(w[inside].sum()),
        "assessed": int(assessed),
        "on_sea_cells": int(w[on_sea].sum()),
        "with_defaulted_attributes": int(w[(defaulted != "") & inside].sum()),
        "expected_damage_state_mean": (round(float(np.nansum(e_state * w * resolved)
                                                   / assessed), 3) if assessed else None),
        "by_state": {STATE_LABELS[k]: _interval(expected[k], q_state[0, k], q_state[1, k])
                     for k in range(N_STATES + 1)},
        "at_least": {f"DS{k}+": _interval(at_least[k], q_least[0, k], q_least[1, k])
                     for k in range(1, N_STATES + 1)},
    }


def _fill_grid_validity(grid: CellGrid, f: TownField) -> None:
    """NaN (no-data) for cells whose centre is off the forecast field and hold no
    buildings; 0 elsewhere means "no buildings / none damaged"."""
    if not grid.layers:
        return
    ny, nx = grid.shape
    xs = grid.x0 + (np.arange(nx) + 0.5) * grid.size
    ys = grid.y1 - (np.arange(ny) + 0.5) * grid.size
    gx, gy = np.meshgrid(xs, ys)
    t = transformer(grid.crs, f.crs)
    fx, fy = (gx, gy) if t is None else t.transform(gx, gy)
    _, _, inside = f.locate(np.asarray(fx), np.asarray(fy))
    valid = inside if grid.occupied is None else inside | grid.occupied
    for name, (arr, desc, units) in grid.layers.items():
        grid.layers[name] = (np.where(valid, arr, np.nan).astype(np.float32), desc, units)


# -- people -----------------------------------------------------------------------------

def _assess_people(fields, weights, population: Population, districts, params, b_state,
                   summary, town_area, district_areas) -> None:
    p = params.casualty
    labels = cas.depth_class_labels(p.inundation_threshold_m)
    n_d = len(district_areas)
    per_scen = []
    for s_i, f in enumerate(fields):
        per_scen.append(_people_one(f, s_i, population, districts, params, b_state, n_d))
    W = weights

    def combine(key, g=None) -> np.ndarray:
        """Values per scenario (axis 0) for the town or district g."""
        if g is None:
            return np.array([ps["town"][key] for ps in per_scen])
        return np.array([ps["districts"][key][g] for ps in per_scen])

    def area_dict(g=None) -> dict:
        classes = combine("classes", g)  # (S, n_classes)
        c_exp = W @ classes
        deaths_c = combine("central", g)
        out = {
            "in_field": round(float(W @ combine("in_field", g)), 1),
            "by_depth_class": {lab: {"expected": round(float(c_exp[k]), 1),
                                     "min": round(float(classes[:, k].min()), 1),
                                     "max": round(float(classes[:, k].max()), 1)}
                               for k, lab in enumerate(labels)},
            "inundated": round(float(W @ classes[:, 1:].sum(axis=1)), 1),
            "caught": round(float(W @ combine("caught", g)), 1),
            "casualties": {"expected": round(float(W @ deaths_c), 1),
                           "low": round(float(combine("low", g).min()), 1),
                           "high": round(float(combine("high", g).max()), 1),
                           "model": p.model},
        }
        if g is None:
            out["outside_field"] = round(float(W @ combine("outside")), 1)
            out["on_sea_cells"] = round(float(W @ combine("unplaced")), 1)
            out["census_total"] = round(population.total, 1)
            out["census_cells_suppressed"] = population.suppressed
            if len(per_scen) > 1:
                out["casualties"]["per_scenario"] = [round(float(v), 1) for v in deaths_c]
        return out

    town_area["people"] = area_dict()
    for g, area in enumerate(district_areas):
        area["people"] = area_dict(g)
    summary["population"] = {"source": Path(population.source).name, "kind": population.kind,
                             "weighting": params.population_weighting,
                             "depth_classes": labels,
                             "depth_class_keys": cas.depth_class_keys(p.inundation_threshold_m),
                             "depth_class_source": "MLIT 水害ハザードマップ作成の手引き (H28) "
                                                   "detailed version breaks 0.3, 0.5, 1, 3, 5, "
                                                   "10, 20 m"}


def _people_one(f: TownField, s_i: int, population: Population, districts, params, b_state,
                n_d: int) -> dict:
    """People parcels on one field and their casualties, summed per town and district."""
    p = params.casualty
    ny, nx = f.shape
    depth = f.data["max_depth"]
    arrival = f.data.get("arrival_time", np.full(depth.shape, np.nan, dtype=np.float32))
    cells = to_crs(population.cells, population.crs, f.crs)
    w, s, e, n = f.bounds
    near = shapely.intersects(cells, shapely.box(w, s, e, n))
    total = float(population.people.sum())
    idx_near = np.flatnonzero(near & (population.people > 0))
    raster = np.full((ny, nx), -1, dtype=np.int32)
    if idx_near.size:
        shapes = ((g, int(k)) for k, g in enumerate(cells[idx_near]))
        burned = rasterio.features.rasterize(shapes, out_shape=(ny, nx), transform=f.transform,
                                             fill=-1, dtype="int32")
        raster = np.ascontiguousarray(burned[::-1])  # to rows south first
    flat = raster.ravel()
    covered = f.covered.ravel()
    n_near = idx_near.size
    n_in = np.bincount(flat[flat >= 0], minlength=n_near)
    n_cov = np.bincount(flat[(flat >= 0) & covered], minlength=n_near)
    areas = shapely.area(cells[idx_near])
    within = shapely.covered_by(cells[idx_near], shapely.box(w, s, e, n))
    frac = np.where(within & (n_in == n_cov) & (n_in > 0), 1.0,
                    np.minimum(1.0, n_cov * f.dx * f.dy / np.maximum(areas, 1e-30)))
    # census cells smaller than the forecast cells hold no cell centre: each goes whole to
    # the forecast cell containing its representative point
    small = np.flatnonzero(n_in == 0)
    rep = shapely.point_on_surface(cells[idx_near[small]])
    s_row, s_col, s_inside = f.locate(shapely.get_x(rep), shapely.get_y(rep))
    frac[small] = s_inside
    people_in = population.people[idx_near] * frac
    outside = total - float(people_in.sum())
    dist = cas.distance_to_safety(depth, f.covered, f.cell_size_m(), p.inundation_threshold_m)
    land = (np.isfinite(depth) & f.covered).ravel()
    district_grid = np.full(ny * nx, -1, dtype=np.int64)
    if districts is not None and n_d:
        dgeoms = to_crs(np.asarray(districts.geometry.values),
                         CRS.from_user_input(districts.crs), f.crs)
        burned = rasterio.features.rasterize(((g, k) for k, g in enumerate(dgeoms)),
                                             out_shape=(ny, nx), transform=f.transform,
                                             fill=-1, dtype="int32")
        district_grid = burned[::-1].ravel().astype(np.int64)
    parts = []  # (people, depth, arrival, distance, district)
    placed_by_buildings = np.zeros(n_near, dtype=bool)
    if b_state is not None and params.population_weighting == "buildings":
        bcell = b_state["cell"][s_i]
        ok = b_state["resolved"] & (bcell >= 0)
        bpop = np.where(ok, flat[np.maximum(bcell, 0)], -1)
        ok &= bpop >= 0
        wts = b_state["count"] * ok
        W = np.bincount(bpop[ok], weights=wts[ok], minlength=n_near)
        placed_by_buildings = W > 0
        share = np.where(ok, people_in[np.maximum(bpop, 0)] * wts
                         / np.maximum(W[np.maximum(bpop, 0)], 1e-30), 0.0)
        vals = b_state["sampled"][s_i]
        sel = ok & (share > 0)
        parts.append((share[sel], vals["max_depth"][sel],
                      vals.get("arrival_time", np.full(sel.size, np.nan))[sel],
                      dist.ravel()[bcell[sel]], b_state["district"][sel]))
    # land cells for census cells without buildings
    lc = np.flatnonzero(land & (flat >= 0))
    lc = lc[~placed_by_buildings[flat[lc]]]
    n_land = np.bincount(flat[lc], minlength=n_near)
    per_cell = people_in / np.maximum(n_land, 1)
    parts.append((per_cell[flat[lc]], depth.ravel()[lc].astype(np.float64),
                  arrival.ravel()[lc].astype(np.float64), dist.ravel()[lc],
                  district_grid[lc]))
    is_small = np.zeros(n_near, dtype=bool)
    is_small[small] = True
    unplaced = float(people_in[(n_land == 0) & ~placed_by_buildings & ~is_small].sum())
    s_cell = s_row * nx + s_col
    s_land = s_inside & land[s_cell]
    unplaced += float(people_in[small[s_inside & ~s_land]].sum())
    s_cell, s_people = s_cell[s_land], people_in[small[s_land]]
    parts.append((s_people, depth.ravel()[s_cell].astype(np.float64),
                  arrival.ravel()[s_cell].astype(np.float64), dist.ravel()[s_cell],
                  district_grid[s_cell]))
    people = np.concatenate([q[0] for q in parts])
    pd_ = np.concatenate([q[1] for q in parts])
    pa = np.concatenate([q[2] for q in parts])
    pdist = np.concatenate([q[3] for q in parts])
    pdis = np.concatenate([q[4] for q in parts]).astype(np.int64)
    result = cas.casualties(people, pd_, pa, pdist, p)
    cls = cas.depth_class(pd_, p.inundation_threshold_m)
    n_cls = len(cas.DEPTH_BREAKS) + 2
    ok = cls >= 0
    classes = np.bincount(cls[ok], weights=people[ok], minlength=n_cls)
    town = {"in_field": float(people.sum()), "outside": outside, "unplaced": unplaced,
            "classes": classes}
    for key in ("central", "low", "high", "caught"):
        town[key] = float(result[key].sum())
    dist_out: dict[str, np.ndarray] = {}
    if n_d:
        good = (pdis >= 0) & ok
        dc = np.zeros((n_d, n_cls))
        np.add.at(dc, (pdis[good], cls[good]), people[good])
        dist_out["classes"] = dc
        in_d = pdis >= 0
        dist_out["in_field"] = np.bincount(pdis[in_d], weights=people[in_d], minlength=n_d)
        for key in ("central", "low", "high", "caught"):
            dist_out[key] = np.bincount(pdis[in_d], weights=result[key][in_d], minlength=n_d)
    return {"town": town, "districts": dist_out}
