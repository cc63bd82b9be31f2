"""The unit-source database: every unit source's tsunami, computed in advance.

For each unit source of a :class:`~tsunami.realtime.zone.FaultZone` (1 m of slip) the
database holds

- its initial sea-surface displacement on the region's OUTER grid (Okada 1985, with the
  Tanioka-Satake horizontal term and the Kajiura filter, as ``tsunami run`` computes a
  fault source), so that any slip distribution's initial surface is their weighted sum;
- the sea surface it produces at every catalogued station and forecast point (Green's
  functions), computed with the linear long-wave equations on that grid: the engine's
  :class:`~tsunami.model.ShallowWaterModel` with advection dropped everywhere
  (``linear_depth = 0``) and no friction (Manning n = 0), so the response is linear in
  the slip to within eta/h (the pressure term keeps the total depth eta + h; for 1 m of
  slip eta/h is below 1e-3 in water deeper than a few hundred metres);
- the vertical sea-floor displacement at each point, which a bottom-pressure gauge on a
  moving sea floor feels as a permanent offset (it records the water column eta - uz).

Building (:func:`build_database`) runs one task per unit source on a dask.distributed
cluster (a :class:`~distributed.LocalCluster` by default, or an existing scheduler).
Each finished unit is stored at once in ``DB/parts/`` (written atomically), so an
interrupted build resumes where it stopped; when every unit is done the parts are
gathered into ``DB/database.nc`` (NetCDF-4, compressed) and removed. Every file carries a
fingerprint of what determines its content (zone file, grid, bathymetry, points, time
sampling, equations): a part or database built from other inputs is never mixed in.

Times are seconds after the origin time (the rupture is instantaneous), lengths metres,
sea surface metres per metre of slip.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from tsunami import __version__
from tsunami.atomic import atomic_path
from tsunami.errors import InputError
from tsunami.grid import Grid
from tsunami.realtime.stations import STATION_ID, StationCatalogue
from tsunami.realtime.zone import FaultZone, laplacian
from tsunami.region import Region
from tsunami.source.okada import Subfault

#: File names inside a database folder.
DATABASE_FILE = "database.nc"
PARTS_FOLDER = "parts"
#: What the Green's functions solve; part of every fingerprint.
EQUATIONS = ("linear long-wave equations (tsunami ShallowWaterModel, linear_depth = 0, "
             "Manning n = 0), staggered leapfrog; initial surface: Okada (1985) + "
             "Tanioka & Satake (1996) + Kajiura (1963)")
#: A station or forecast point in a cell shallower than this (m) is moved to the nearest
#: cell at least this deep (a coarse outer grid puts coastal points on land).
MIN_POINT_DEPTH = 1.0
#: Significant decimal places kept of a unit's sea surface (m per m of slip): 1e-5 m is
#: 0.5 mm for 50 m of slip, and rounding makes the far field compress to nothing.
SEA_SURFACE_DIGITS = 5
#: Kinds of point: the catalogue's two kinds, and points where the forecast is wanted.
FORECAST_POINT = "forecast_point"


@dataclass(frozen=True)
class ForecastPoint:
    """A point offshore of a town where forecasts report the sea surface (lon/lat deg)."""

    id: str
    lon: float
    lat: float
    town: str = ""


def read_forecast_points(path: str | Path) -> list[ForecastPoint]:
    """Forecast points from a CSV file with the header ``id,lon,lat[,town]`` (degrees)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "forecast point file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc}") from None
    lines = [line for line in text.splitlines() if line.strip() and
             not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    missing = {"id", "lon", "lat"} - set(reader.fieldnames or ())
    if missing:
        raise InputError(path, None, f"missing column(s) {sorted(missing)}; expected "
                         "id,lon,lat[,town]")
    points, seen = [], set()
    for n, row in enumerate(reader, start=2):
        where = f"row {n - 1}"
        pid = (row.get("id") or "").strip()
        if not STATION_ID.match(pid):
            raise InputError(path, f"{where}.id", f"{pid!r} is not a point id (letters, "
                             "digits, '_', '.', '-')")
        if pid in seen:
            raise InputError(path, f"{where}.id", f"point id {pid!r} repeats")
        seen.add(pid)
        values = []
        for key, low, high in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0)):
            try:
                v = float(row.get(key) or "nan")
            except ValueError:
                v = float("nan")
            if not low <= v <= high:
                raise InputError(path, f"{where}.{key}", f"expected a number in "
                                 f"[{low:g}, {high:g}], got {row.get(key)!r}")
            values.append(v)
        points.append(ForecastPoint(pid, values[0], values[1], (row.get("town") or "").strip()))
    if not points:
        raise InputError(path, None, "no forecast point")
    return points


@dataclass(frozen=True)
class Point:
    """A station or forecast point as the database samples it: ``lon``/``lat`` as given,
    ``model_lon``/``model_lat`` where the outer grid is sampled (moved off land)."""

    id: str
    kind: str
    lon: float
    lat: float
    model_lon: float
    model_lat: float
    depth_m: float  # catalogue depth (NaN for forecast points)
    town: str = ""


def place_points(grid: Grid, depth: np.ndarray, stations: StationCatalogue | None,
                 forecast_points: Sequence[ForecastPoint] = ()) -> tuple[list[Point],
                                                                         list[str]]:
    """The stations and forecast points inside ``grid``, each moved to the nearest cell
    at least :data:`MIN_POINT_DEPTH` deep if its own cell is shallower (with a warning).
    Returns the points and the ids of stations left out because they lie outside."""
    candidates = [(s.id, s.kind, s.lon, s.lat, s.depth_m, "") for s in (stations or ())]
    candidates += [(p.id, FORECAST_POINT, p.lon, p.lat, float("nan"), p.town)
                   for p in forecast_points]
    ids = [c[0] for c in candidates]
    for pid in ids:
        if ids.count(pid) > 1:
            raise InputError(stations.path if stations else None, f"id {pid}",
                             "the id names both a station and a forecast point")
    if not (depth >= MIN_POINT_DEPTH).any():
        raise ValueError(f"grid {grid.name!r} has no water {MIN_POINT_DEPTH:g} m deep")
    points, outside = [], []
    for pid, kind, lon, lat, station_depth, town in candidates:
        if not grid.contains(lon, lat):
            if kind == FORECAST_POINT:
                raise InputError(None, f"forecast point {pid}", f"({lon}, {lat}) lies "
                                 f"outside grid {grid.name!r} {grid.bounds_text}")
            outside.append(pid)
            continue
        water = nearest_water(grid, depth, lon, lat)
        model_lon, model_lat = water.lon, water.lat
        if water.distance_m > 0:
            warnings.warn(f"{kind} {pid!r} at ({lon:.4f}, {lat:.4f}) {water.describe()}",
                          stacklevel=2)
        points.append(Point(pid, kind, lon, lat, model_lon, model_lat, station_depth, town))
    return points, outside


@dataclass(frozen=True)
class Water:
    """Where a point is sampled (:func:`nearest_water`): ``lon``/``lat``, the distance
    (m, great circle) from the point itself, as coastal_maxima.csv's ``moved_m`` gives
    it, and the depths (m) of the point's cell and of the one sampled."""

    lon: float
    lat: float
    distance_m: float
    cell_depth_m: float
    depth_m: float
    grid: str

    def describe(self) -> str:
        """What moving the point means, for a warning."""
        return (f"lies in a cell {max(self.cell_depth_m, 0):.1f} m deep on grid "
                f"{self.grid!r}: sampled {self.distance_m:.0f} m away at "
                f"({self.lon:.4f}, {self.lat:.4f}), {self.depth_m:.0f} m deep")


def nearest_water(grid: Grid, depth: np.ndarray, lon: float, lat: float) -> Water | None:
    """Where a point at (``lon``, ``lat``) inside ``grid`` is sampled: the point itself if
    its cell is at least :data:`MIN_POINT_DEPTH` deep (``depth``, m, on ``grid``), else
    the centre of the cell that is nearest the point (None if no cell is)."""
    j = min(int((lat - grid.y0) / grid.dy), grid.ny - 1)
    i = min(int((lon - grid.x0) / grid.dx), grid.nx - 1)
    if depth[j, i] >= MIN_POINT_DEPTH:
        return Water(lon, lat, 0.0, float(depth[j, i]), float(depth[j, i]), grid.name)
    wet_rows, wet_cols = np.nonzero(depth >= MIN_POINT_DEPTH)
    if not wet_rows.size:
        return None
    # The wet cell centre nearest the point itself (east and north offsets in metres,
    # cell widths shrinking with latitude): from the point's cell's centre instead, a
    # point near its cell's edge was moved past a nearer wet cell.
    widths, dy = grid.cell_widths()
    east = (grid.x[wet_cols] - lon) / grid.dx * widths[wet_rows]
    north = (grid.y[wet_rows] - lat) / grid.dy * dy
    k = int(np.argmin(np.hypot(east, north)))
    row, col = wet_rows[k], wet_cols[k]
    x, y = float(grid.x[col]), float(grid.y[row])
    return Water(x, y, grid.distance_m(lon, lat, x, y), float(depth[j, i]),
                 float(depth[row, col]), grid.name)


# -- the computation of one unit source (runs on a dask worker) ---------------------------
def unit_response(subfault: Subfault, grid: Grid, depth: np.ndarray,
                  boundaries: dict[str, str], points: list[Point], times: np.ndarray,
                  dt: float, dtype: str = "float32", kernel_threads: int = 1,
                  max_field: bool = False) -> dict:
    """Initial sea surface (m, on ``grid``), sea surface at ``points`` at ``times`` (s) and
    sea-floor uplift at the points for one subfault, with the linear equations, on
    ``kernel_threads`` kernel threads (the caller's Numba setting is restored after);
    with ``max_field`` also the maximum sea-surface height of every cell (``max_eta``,
    NaN where never wet)."""
    import numba

    before = numba.get_num_threads()
    try:
        return _unit_response(subfault, grid, depth, boundaries, points, times, dt, dtype,
                              kernel_threads, max_field)
    finally:
        numba.set_num_threads(before)


def _unit_response(subfault, grid, depth, boundaries, points, times, dt, dtype,
                   kernel_threads, max_field=False) -> dict:
    import numba

    from tsunami.boundaries import Boundaries, Open, Wall
    from tsunami.gauges import Gauge, GaugeRecorder
    from tsunami.model import ShallowWaterModel
    from tsunami.simulation import Simulation
    from tsunami.source.okada import seafloor_displacement
    from tsunami.source.sea_surface import grid_lonlat, sea_surface

    numba.set_num_threads(max(1, min(kernel_threads, numba.config.NUMBA_NUM_THREADS)))
    start, cpu = time.perf_counter(), time.process_time()
    lon, lat = grid_lonlat(grid)
    ux, uy, uz = seafloor_displacement([subfault], lon, lat)
    surface = sea_surface(uz, ux, uy, depth, grid, tanioka_satake=True, kajiura=True)
    # Only the surface is read (gauge series, eta_max): no flow speed maxima.
    model = ShallowWaterModel(
        grid, depth, manning=0.0, linear_depth=0.0, dtype=np.dtype(dtype).type, dt=dt,
        boundaries=Boundaries(**{s: Wall() if k == "wall" else Open()
                                 for s, k in boundaries.items()}), flow_maxima=False)
    surface = np.where(model.initially_wet, surface, 0.0)
    model.set(eta=model.eta + surface)
    # Samples three times per output step are plenty for linear interpolation onto it,
    # and sampling every step would cost as much as the kernels on a coarse grid.
    step = float(times[1] - times[0]) if len(times) > 1 else dt
    recorder = GaugeRecorder(model, [Gauge(p.id, p.model_lon, p.model_lat) for p in points],
                             interval=step / 3.0 if step / 3.0 > dt else 0.0)
    simulation = Simulation(model, float(times[-1]) + dt, callbacks=[recorder],
                            health_interval=100)
    simulation.run()
    recorded = recorder.to_dataset()
    t = recorded["time"].values
    eta = np.nan_to_num(recorded["eta"].values)  # a point that dries reads still water
    series = np.stack([np.interp(times, t, eta[:, k]) for k in range(len(points))])
    uplift = seafloor_displacement([subfault], [p.model_lon for p in points],
                                   [p.model_lat for p in points])[2]
    extra = {"max_eta": np.where(model.initially_wet, model.eta_max, np.nan).astype(
        np.float32)} if max_field else {}
    return {**extra, "sea_surface": surface.astype(np.float32), "eta": series.astype(np.float32),
            "uplift": np.asarray(uplift, np.float32), "steps": simulation.steps,
            "wall_s": time.perf_counter() - start,
            # CPU seconds of the worker process (all its threads): the cost on a quiet
            # machine, which wall time on a shared one is not.
            "cpu_s": time.process_time() - cpu}


# -- building -----------------------------------------------------------------------------
@dataclass
class BuildReport:
    """What a build did: units computed now and before, wall time, the file and its size."""

    path: Path
    units: int
    computed: int
    reused: int
    wall_s: float
    unit_wall_s: list[float] = field(default_factory=list)
    unit_cpu_s: list[float] = field(default_factory=list)
    size_bytes: int = 0
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return f"{self.path}: up to date ({self.units} unit sources)"
        mean = (f", {np.mean(self.unit_wall_s):.1f} s wall and {np.mean(self.unit_cpu_s):.1f} s "
                f"CPU per unit" if self.unit_wall_s else "")
        return (f"{self.path}: {self.units} unit sources ({self.computed} computed, "
                f"{self.reused} reused from an interrupted build) in {self.wall_s:.1f} s"
                f"{mean}; {self.size_bytes / 1e6:.1f} MB")


def build_database(zone: FaultZone, region: Region, stations: StationCatalogue | None,
                   out: str | Path, *, forecast_points: Sequence[ForecastPoint] = (),
                   duration: float = 3600.0, interval: float = 15.0,
                   dtype: str = "float32", scheduler: str | None = None,
                   workers: int | None = None, processes: bool = True,
                   kernel_threads: int = 1, progress: bool = False) -> BuildReport:
    """Compute the unit-source database of ``zone`` on ``region``'s outer grid into the
    folder ``out`` (module doc).

    ``duration`` (s) of the Green's functions, sampled every ``interval`` (s). The work is
    one dask task per missing unit: on the scheduler at ``scheduler`` (an address such as
    ``tcp://host:8786``) or on a LocalCluster of ``workers`` (default: one per core)
    processes (``processes=False``: threads); each task runs the kernels on
    ``kernel_threads`` threads. Units already in ``out/parts`` with the same fingerprint
    are reused. Returns a :class:`BuildReport`.
    """
    start = time.perf_counter()
    out = Path(out)
    if not (duration > 0 and interval > 0 and interval <= duration):
        raise ValueError(f"need 0 < interval <= duration, got {interval}, {duration}")
    spec = region.grids[0]
    grid = region.grid(spec.name)
    depth = -region.elevation(grid)
    points, outside = place_points(grid, depth, stations, forecast_points)
    if not points:
        raise InputError(stations.path if stations else None, "station",
                         f"no station or forecast point lies inside grid {grid.name!r}")
    if outside:
        warnings.warn(f"stations outside grid {grid.name!r}, left out of the database: "
                      f"{', '.join(outside)}", stacklevel=2)
    times = np.arange(0.0, duration + 0.5 * interval, interval)
    dt = _time_step(grid, depth, dtype)
    fingerprint = _fingerprint(zone, grid, depth, spec.boundaries, points, times, dt, dtype)
    database = out / DATABASE_FILE
    if database.exists():
        found = _read_fingerprint(database)
        if found == fingerprint:
            return BuildReport(database, len(zone), 0, 0, time.perf_counter() - start,
                               size_bytes=database.stat().st_size, up_to_date=True)
        raise InputError(database, "fingerprint", "this folder holds a database built "
                         "from other inputs (zone, region, stations or sampling); build "
                         "into another folder or delete it")
    parts = out / PARTS_FOLDER
    parts.mkdir(parents=True, exist_ok=True)
    done = {u.index for u in zone.units
            if _read_fingerprint(_part_path(parts, u.index)) == fingerprint}
    todo = [u for u in zone.units if u.index not in done]
    wall, cpu = _run_tasks(todo, grid, depth, spec.boundaries, points, times, dt, dtype,
                           parts, fingerprint, scheduler, workers, processes, kernel_threads,
                           progress)
    provenance = _provenance(zone, region, grid, stations, forecast_points, times, dt, dtype,
                             fingerprint, time.perf_counter() - start, wall, cpu)
    _consolidate(zone, grid, depth, points, times, parts, provenance, database)
    for u in zone.units:
        _part_path(parts, u.index).unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        pass  # something else lives there: leave it
    return BuildReport(database, len(zone), len(todo), len(done),
                       time.perf_counter() - start, wall, cpu, database.stat().st_size)


def _run_tasks(todo, grid, depth, boundaries, points, times, dt, dtype, parts, fingerprint,
               scheduler, workers, processes, kernel_threads, progress
               ) -> tuple[list[float], list[float]]:
    """Compute the units of ``todo`` as Dask tasks, writing each part as it arrives;
    their wall and CPU times (s). Nothing to do (every part found): two empty lists."""
    wall, cpu = [], []
    if not todo:
        return wall, cpu
    from distributed import as_completed
    from tqdm import tqdm

    from tsunami.cluster import dask_client

    with dask_client(workers, scheduler, dashboard_address=None, threads=kernel_threads,
                     processes=processes) as client:
        depth_future = client.scatter(depth, broadcast=True)
        futures = {client.submit(unit_response, u.subfault, grid, depth_future, boundaries,
                                 points, times, dt, dtype, kernel_threads, pure=False): u
                   for u in todo}
        bar = tqdm(total=len(todo), unit="unit", desc="unit sources", disable=not progress)
        for future in as_completed(futures):
            unit = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                for f in futures:
                    f.cancel()
                raise RuntimeError(f"unit source {unit.name} (#{unit.index}) failed: "
                                   f"{exc}") from exc
            _write_part(_part_path(parts, unit.index), unit.index, result, fingerprint)
            wall.append(result["wall_s"])
            cpu.append(result["cpu_s"])
            bar.update(1)
        bar.close()
    return wall, cpu


def _time_step(grid: Grid, depth: np.ndarray, dtype: str) -> float:
    """The CFL time step of the still ocean on the grid: one for every unit."""
    from tsunami.model import ShallowWaterModel

    return ShallowWaterModel(grid, depth, dtype=np.dtype(dtype).type).stable_time_step()


def _part_path(parts: Path, index: int) -> Path:
    return parts / f"unit_{index:05d}.nc"


def _write_part(path: Path, index: int, result: dict, fingerprint: str) -> None:
    ds = xr.Dataset({
        "eta": (("point", "time"), result["eta"]),
        "uplift": (("point",), result["uplift"]),
        "sea_surface": (("y", "x"), result["sea_surface"]),
    }, attrs={"fingerprint": fingerprint, "unit": index, "steps": result["steps"],
              "wall_s": result["wall_s"], "cpu_s": result["cpu_s"]})
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, encoding={"sea_surface": {"zlib": True, "complevel": 4}})


def _read_fingerprint(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        with xr.open_dataset(path) as ds:
            return ds.attrs.get("fingerprint")
    except (OSError, ValueError):
        return None  # a damaged file is recomputed


def _fingerprint(zone: FaultZone, grid: Grid, depth: np.ndarray, boundaries: dict,
                 points: list[Point], times: np.ndarray, dt: float, dtype: str) -> str:
    content = {
        "zone": zone.sha256, "grid": _grid_attrs(grid), "boundaries": boundaries,
        "depth": hashlib.sha256(np.ascontiguousarray(depth, np.float64).tobytes()).hexdigest(),
        "points": [[p.id, p.kind, p.model_lon, p.model_lat] for p in points],
        "times": [float(times[0]), float(times[-1]), len(times)], "dt": dt, "dtype": dtype,
        "equations": EQUATIONS,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _grid_attrs(grid: Grid) -> dict:
    return {"name": grid.name, "nx": grid.nx, "ny": grid.ny, "x0": grid.x0, "y0": grid.y0,
            "dx": grid.dx, "dy": grid.dy,
            "crs": grid.crs.to_string() if grid.crs is not None else "local"}


def _code_version() -> str:
    """The package version and, in a git checkout, the commit (``+dirty`` if modified)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=5, check=True)
        return f"{__version__} ({commit.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        return __version__


def _file_hash(path: Path | None) -> str:
    if path is None or not Path(path).exists():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _provenance(zone, region, grid, stations, forecast_points, times, dt, dtype,
                fingerprint, wall_s, unit_wall, unit_cpu) -> dict:
    return {
        "title": f"unit-source database: zone {zone.name} on {region.name} grid {grid.name}",
        "Conventions": "CF-1.8",
        "fingerprint": fingerprint,
        "zone": zone.name, "zone_file": str(zone.path), "zone_sha256": zone.sha256,
        "zone_toml": zone.text, "rigidity_Pa": zone.rigidity,
        "zone_rows": zone.rows, "zone_columns": zone.columns,
        "region": region.name, "region_file": str(region.path),
        "region_sha256": _file_hash(region.path),
        "stations_file": str(stations.path) if stations and stations.path else "",
        "stations_sha256": _file_hash(stations.path) if stations else "",
        "forecast_points": len(forecast_points),
        "grid": json.dumps(_grid_attrs(grid)), "dt_s": dt, "dtype": dtype,
        "duration_s": float(times[-1]), "interval_s": float(times[1] - times[0]),
        "equations": EQUATIONS,
        "code_version": _code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_wall_s": wall_s,
        "unit_wall_s_mean": float(np.mean(unit_wall)) if unit_wall else float("nan"),
        "unit_cpu_s_mean": float(np.mean(unit_cpu)) if unit_cpu else float("nan"),
    }


def _consolidate(zone, grid, depth, points, times, parts, provenance, path) -> None:
    n = len(zone)
    eta = np.empty((n, len(points), len(times)), np.float32)
    uplift = np.empty((n, len(points)), np.float32)
    surface = np.empty((n, grid.ny, grid.nx), np.float32)
    for u in zone.units:
        with xr.open_dataset(_part_path(parts, u.index)) as part:
            eta[u.index] = part["eta"].values
            uplift[u.index] = part["uplift"].values
            surface[u.index] = part["sea_surface"].values
    subs = zone.subfaults()
    lon_name, lat_name = ("lon", "lat") if grid.spherical else ("x", "y")
    ds = xr.Dataset(
        {
            "eta": (("unit", "point", "time"), eta, {
                "long_name": "sea surface at the point per metre of slip (linear "
                             "long-wave equations)", "units": "m m-1"}),
            "seafloor_uplift": (("unit", "point"), uplift, {
                "long_name": "vertical sea-floor displacement at the point per metre of "
                             "slip (Okada 1985)", "units": "m m-1"}),
            "sea_surface": (("unit", lat_name, lon_name), surface, {
                "long_name": "initial sea-surface displacement per metre of slip",
                "units": "m m-1"}),
            "elevation": ((lat_name, lon_name), (-depth).astype(np.float32), {
                "long_name": "ground and sea-bed elevation of the outer grid",
                "units": "m", "positive": "up"}),
            "unit_name": (("unit",), [u.name for u in zone.units]),
            "row": (("unit",), [u.row for u in zone.units]),
            "column": (("unit",), [u.column for u in zone.units]),
            **{name: (("unit",), [getattr(s, attr) for s in subs], {"units": unit})
               for name, attr, unit in (
                   ("longitude", "longitude", "degrees_east"),
                   ("latitude", "latitude", "degrees_north"), ("depth_m", "depth", "m"),
                   ("strike", "strike", "degrees"), ("dip", "dip", "degrees"),
                   ("rake", "rake", "degrees"), ("length_m", "length", "m"),
                   ("width_m", "width", "m"))},
            "point_kind": (("point",), [p.kind for p in points]),
            "point_lon": (("point",), [p.lon for p in points], {"units": "degrees_east"}),
            "point_lat": (("point",), [p.lat for p in points], {"units": "degrees_north"}),
            "model_lon": (("point",), [p.model_lon for p in points],
                          {"long_name": "where the grid is sampled"}),
            "model_lat": (("point",), [p.model_lat for p in points]),
            "point_depth_m": (("point",), [p.depth_m for p in points], {"units": "m"}),
            "point_town": (("point",), [p.town for p in points]),
        },
        coords={"unit": np.arange(n), "point": [p.id for p in points],
                "time": ("time", times, {"long_name": "time after the origin",
                                         "units": "s"}),
                lat_name: ((lat_name,), grid.y), lon_name: ((lon_name,), grid.x)},
        attrs={**provenance, "longitude_latitude_reference":
               "centre of the top edge of each unit source"},
    )
    encoding = {
        "sea_surface": {"zlib": True, "complevel": 4, "chunksizes": (1, grid.ny, grid.nx),
                        "least_significant_digit": SEA_SURFACE_DIGITS},
        "eta": {"zlib": True, "complevel": 4},
        "elevation": {"zlib": True, "complevel": 4},
    }
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, encoding=encoding)


# -- reading ------------------------------------------------------------------------------
class UnitSourceDatabase:
    """A built database, opened for inversions (small arrays in memory; the unit sea
    surfaces are read on first use and kept).

    Attributes: ``zone`` (name), ``units`` (Subfaults with 1 m of slip), ``rows`` and
    ``columns`` (unit grid position), ``rigidity`` (Pa), ``grid`` (the outer grid),
    ``elevation`` (m, on the grid), ``points`` (:class:`Point` by id), ``times`` (s),
    ``eta`` (unit, point, time; m per m of slip), ``uplift`` (unit, point), ``attrs``
    (provenance).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / DATABASE_FILE
        if not path.exists():
            raise InputError(path, None, "no unit-source database here (tsunami database "
                             "build writes DB/database.nc)")
        try:
            ds = xr.open_dataset(path)
        except (OSError, ValueError) as exc:
            raise InputError(path, None, f"cannot read the database: {exc}") from None
        with ds:
            self.path = path
            self.attrs = dict(ds.attrs)
            self.zone = str(ds.attrs["zone"])
            self.rigidity = float(ds.attrs["rigidity_Pa"])
            self.rows = ds["row"].values.astype(int)
            self.columns = ds["column"].values.astype(int)
            self.unit_names = [str(v) for v in ds["unit_name"].values]
            self.units = [Subfault(*(float(ds[k].values[i]) for k in (
                "longitude", "latitude", "depth_m", "strike", "dip", "rake")), 1.0,
                float(ds["length_m"].values[i]), float(ds["width_m"].values[i]))
                for i in range(ds.sizes["unit"])]
            g = json.loads(ds.attrs["grid"])
            self.grid = Grid(nx=g["nx"], ny=g["ny"], x0=g["x0"], y0=g["y0"], dx=g["dx"],
                             dy=g["dy"], crs=None if g["crs"] == "local" else g["crs"],
                             name=g["name"])
            self.elevation = ds["elevation"].values.astype(np.float64)
            self.times = ds["time"].values.astype(np.float64)
            self.eta = ds["eta"].values.astype(np.float64)
            self.uplift = ds["seafloor_uplift"].values.astype(np.float64)
            self.points = {
                str(pid): Point(str(pid), str(kind), float(lon), float(lat), float(mlon),
                                float(mlat), float(d), str(town))
                for pid, kind, lon, lat, mlon, mlat, d, town in zip(
                    ds["point"].values, ds["point_kind"].values, ds["point_lon"].values,
                    ds["point_lat"].values, ds["model_lon"].values, ds["model_lat"].values,
                    ds["point_depth_m"].values, ds["point_town"].values, strict=True)}
        self._index = {pid: k for k, pid in enumerate(self.points)}
        self._surfaces: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.units)

    @property
    def stations(self) -> list[str]:
        """Ids of the gauges (not forecast points) in the database."""
        return [p.id for p in self.points.values() if p.kind != FORECAST_POINT]

    @property
    def forecast_points(self) -> list[str]:
        return [p.id for p in self.points.values() if p.kind == FORECAST_POINT]

    def laplacian(self) -> np.ndarray:
        """Smoothing operator of the units (:func:`tsunami.realtime.zone.laplacian`)."""
        return laplacian(self.rows, self.columns)

    def response(self, point: str, offset_kinds: tuple[str, ...] = ("bottom_pressure",)
                 ) -> np.ndarray:
        """What the gauge at ``point`` records per metre of slip of each unit (unit,
        time): the sea surface, less the sea-floor uplift under the point where its kind
        is in ``offset_kinds``: a bottom-pressure gauge measures the water column above a
        sensor that moved with the sea floor (a GNSS buoy positioned against a coastal
        reference station that subsided with the coast records nearly the same)."""
        k = self._index[point]
        series = self.eta[:, k, :]
        if self.points[point].kind in offset_kinds:
            series = series - self.uplift[:, k][:, None]
        return series

    def subfaults(self, slip: np.ndarray) -> list[Subfault]:
        """The units' rectangles carrying ``slip`` (m per unit)."""
        import dataclasses

        return [dataclasses.replace(u, slip=float(s))
                for u, s in zip(self.units, np.asarray(slip, float), strict=True)]

    def moment(self, slip: np.ndarray) -> float:
        """Seismic moment (N m) of ``slip`` (m per unit) with the zone's rigidity."""
        areas = np.array([u.area for u in self.units])
        return float(self.rigidity * np.dot(areas, np.asarray(slip, np.float64)))

    def sea_surface(self, slip: np.ndarray) -> np.ndarray:
        """Initial sea surface (m) on the outer grid for ``slip`` (m per unit): the
        slip-weighted sum of the unit surfaces (exact: Okada, Tanioka-Satake and Kajiura
        are linear in the slip)."""
        slip = np.asarray(slip, np.float64)
        if slip.shape != (len(self.units),):
            raise ValueError(f"expected {len(self.units)} slip values, got {slip.shape}")
        surfaces = self.load_sea_surfaces()
        total = np.zeros(self.grid.shape)
        for k in np.nonzero(slip)[0]:
            total += slip[k] * surfaces[k]
        return total

    def load_sea_surfaces(self) -> np.ndarray:
        """All unit sea surfaces (unit, y, x), read once (a service does it at start)."""
        if self._surfaces is None:
            with xr.open_dataset(self.path) as ds:
                self._surfaces = ds["sea_surface"].values.astype(np.float32)
        return self._surfaces
