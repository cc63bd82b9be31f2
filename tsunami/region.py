"""Region files: where the model runs (DEM sources, grids, Manning n, gauges).

A region is a TOML file (format documented in README.md, "Region files"). Loading it
checks every key and file; building a grid's bathymetry resamples the DEM sources onto
it, the finest source that covers a cell taking precedence, blended over a few cells at
each source's edge so that mismatching sources leave no step in the sea bed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer
from scipy import ndimage

from tsunami.boundaries import SIDES
from tsunami.config import Range, Table, load_toml
from tsunami.dem import Raster, check_values, parse_crs, read_raster, resample
from tsunami.errors import Finding, InputError, input_warning
from tsunami.gauges import Gauge
from tsunami.grid import Grid
from tsunami.localtime import zone
from tsunami.names import check_name

BLEND_CELLS = 4  # width (grid cells) of the blend where a finer DEM source begins

#: Plausible ranges of the region's numbers (README, "Plausible ranges"), by key.
REGION_RANGES = {
    "spacing_deg": Range(1e-5, 1.0, "deg", why="[[grid]] spacing, geographic: about 1 m to "
                                               "111 km"),
    "spacing_m": Range(1e-3, 100_000.0, "m", why="[[grid]] spacing, projected and local: "
                                                 "laboratory millimetres to 100 km"),
    "extent_lon": Range(-180.0, 360.0, "deg", why="[[grid]] extent, geographic; 0...360 for "
                                                  "grids across the antimeridian"),
    "extent_lat": Range(-89.0, 89.0, "deg", why="[[grid]] extent, geographic: spherical grids "
                                                "cannot reach a pole"),
    "extent_m": Range(-40_000_000.0, 40_000_000.0, "m",
                      why="[[grid]] extent, projected and local: the Earth's circumference"),
    "cells": Range(4, 100_000_000, "cells", why="per grid (extent / spacing, times ratio): "
                                                "about 10 GB of state at the top"),
    "ratio": Range(1, 15, why="[[grid]] ratio: odd refinement ratio of a nested grid"),
    "manning": Range(0.0, 0.5, "s/m^(1/3)", why="[[grid]] manning (number or raster): sea "
                                                "bed 0.025, dense buildings up to about 0.2"),
    "linear_depth": Range(0.0, 11_000.0, "m", open_low=True,
                          why="[[grid]] linear_depth: the deepest ocean is 10,994 m"),
    "dem_elevation": Range(-11_000.0, 9_000.0, "m", why="[[dem]] values after the vertical "
                                                        "sign: the Mariana trench to Everest"),
}


@dataclass(frozen=True)
class DemSource:
    """A DEM file and how to read it."""

    path: Path
    fmt: str | None
    crs: CRS | None
    local: bool
    vertical: str  # "elevation" (positive up) or "depth" (positive down)
    variable: str | None
    nodata: float | None
    field: str

    def read(self, config: Path) -> Raster:
        raster = read_raster(self.path, fmt=self.fmt, crs=self.crs, variable=self.variable,
                             nodata=self.nodata, field=f"{self.field}.path", config=config,
                             local=self.local)
        if self.vertical == "depth":
            raster.values = -raster.values
        check_values(raster, REGION_RANGES["dem_elevation"], config, f"{self.field}.path")
        return raster


@dataclass(frozen=True)
class GridSpec:
    """A grid as the region file defines it (geometry is resolved by :meth:`Region.grid`)."""

    name: str
    extent: tuple[float, float, float, float] | None  # west, east, south, north
    spacing: tuple[float, float] | None
    parent: str | None
    ratio: int
    manning: float | Path
    linear_depth: float
    boundaries: dict[str, str]
    field: str
    scheme: str = "auto"  # "leapfrog", "fv2", or "auto" (see tsunami.model.default_scheme)


@dataclass(frozen=True)
class Town:
    """A place for which finest-available fields are merged (west, east, south, north)."""

    name: str
    extent: tuple[float, float, float, float]


@dataclass(frozen=True)
class ExposureSpec:
    """What is exposed in a town: building inventory, census population, districts."""

    town: str
    buildings: Path
    population: Path | None = None
    districts: Path | None = None
    structure_field: str | None = None
    storeys_field: str | None = None
    # damage options; None: the defaults of tsunami.damage.DamageParameters
    fragility: Path | None = None  # a fragility CSV
    fragility_source: str | None = None
    partition_size: int | None = None  # buildings per Dask partition


@dataclass
class Region:
    """A loaded region file."""

    name: str
    path: Path
    crs: CRS | None
    output_crs: CRS | None
    dems: list[DemSource]
    grids: list[GridSpec]
    gauges: list[Gauge]
    description: str = ""
    towns: list[Town] = field(default_factory=list)
    exposures: list[ExposureSpec] = field(default_factory=list)
    timezone: str | None = None  # IANA name; None: tsunami.localtime's default
    _rasters: dict[int, Raster] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> Region:
        path = Path(path).resolve()
        root = Table(load_toml(path, "region"), path, "")
        root.check_keys({"region", "dem", "grid", "gauge", "town", "exposure"},
                        {"region", "dem", "grid"})
        meta = root.table("region", required=True)
        meta.check_keys({"name", "crs", "output_crs", "description", "timezone"},
                        {"name", "crs"})
        crs = parse_crs(meta.str("crs"), path, meta.field("crs"))
        output_crs = parse_crs(meta.str("output_crs"), path, meta.field("output_crs")) \
            if meta.has("output_crs") else None
        if output_crs is not None:
            check_output_crs(output_crs, path, meta.field("output_crs"))
        dems = [_dem(t, crs) for t in root.tables("dem")]
        if not dems:
            raise InputError(path, "dem", "at least one [[dem]] source is needed")
        grids = [_grid_spec(t, crs) for t in root.tables("grid")]
        if not grids:
            raise InputError(path, "grid", "at least one [[grid]] is needed")
        names = [g.name for g in grids]
        for g in grids:
            if names.count(g.name) > 1:
                raise InputError(path, g.field + ".name", f"grid name {g.name!r} repeats")
            if g.parent is not None and g.parent not in names[: names.index(g.name)]:
                raise InputError(path, g.field + ".parent", f"parent {g.parent!r} must be a "
                                 "grid defined earlier in the file")
        if sum(g.parent is None for g in grids) != 1:
            raise InputError(path, "grid", "exactly one grid (the outermost) has no parent")
        if grids[0].parent is not None:
            raise InputError(path, "grid[0].parent", "the first grid must be the outermost")
        gauges = []
        for t in root.tables("gauge"):
            t.check_keys({"name", "x", "y"}, {"name", "x", "y"})
            gauges.append(Gauge(_unique_name(t, [g.name for g in gauges], "gauge"),
                                t.number("x"), t.number("y")))
        towns = []
        for t in root.tables("town"):
            t.check_keys({"name", "extent"}, {"name", "extent"})
            name = _unique_name(t, [town.name for town in towns], "town")
            west, east, south, north = t.numbers("extent", 4)
            if not (east > west and north > south):
                raise t.error("extent", "expected [west, east, south, north]")
            towns.append(Town(name, (west, east, south, north)))
        exposures = []
        town_names = [t.name for t in towns]
        for t in root.tables("exposure"):
            t.check_keys({"town", "buildings", "population", "districts", "structure_field",
                          "storeys_field", "fragility", "fragility_source", "partition_size"},
                         {"town", "buildings"})
            if t.str("town") not in town_names:
                raise t.error("town", f"no [[town]] named {t.str('town')!r}; towns: "
                              f"{town_names}")
            spec = ExposureSpec(
                t.str("town"), t.path("buildings"), t.path("population", required=False),
                t.path("districts", required=False), t.str("structure_field"),
                t.str("storeys_field"), t.path("fragility", required=False),
                t.str("fragility_source"), t.integer("partition_size", minimum=1))
            _check_fragility(t, spec)
            exposures.append(spec)
        timezone = meta.str("timezone")
        if timezone is not None:
            try:
                zone(timezone)
            except ValueError as error:
                raise meta.error("timezone", str(error)) from None
        region = cls(meta.str("name"), path, crs, output_crs, dems, grids, gauges,
                     meta.str("description", ""), towns, exposures, timezone)
        root_grid = region.grid(grids[0].name)
        for k, g in enumerate(gauges):
            if not root_grid.contains(g.x, g.y):
                raise InputError(path, f"gauge[{k}]", f"gauge {g.name!r} at ({g.x}, {g.y}) "
                                 f"lies outside grid {root_grid.name!r} {root_grid.bounds_text}")
        for k, town in enumerate(towns):
            west, east, south, north = town.extent
            if not (root_grid.contains(west, south) and root_grid.contains(east, north)):
                raise InputError(path, f"town[{k}].extent", f"town {town.name!r} reaches "
                                 f"outside grid {root_grid.name!r} {root_grid.bounds_text}")
        return region

    # -- geometry ---------------------------------------------------------------------
    def spec(self, name: str) -> GridSpec:
        for g in self.grids:
            if g.name == name:
                return g
        raise KeyError(name)

    def grid(self, name: str) -> Grid:
        """The grid geometry; nested grids are snapped to their parent's cells."""
        spec = self.spec(name)
        if spec.parent is None:
            if spec.extent is None or spec.spacing is None:
                raise InputError(self.path, spec.field, "the outermost grid needs extent and "
                                 "spacing")
            west, east, south, north = spec.extent
            dx, dy = spec.spacing
            nx, ny = round((east - west) / dx), round((north - south) / dy)
            self._check_cells(spec, nx, ny, "extent")
            return Grid(nx=nx, ny=ny, x0=west, y0=south, dx=dx, dy=dy, crs=self.crs,
                        name=name)
        parent = self.grid(spec.parent)
        if spec.extent is None:
            raise InputError(self.path, spec.field + ".extent", "missing required key")
        west, east, south, north = spec.extent
        i0 = int(np.floor((west - parent.x0) / parent.dx + 1e-6))
        i1 = int(np.ceil((east - parent.x0) / parent.dx - 1e-6))
        j0 = int(np.floor((south - parent.y0) / parent.dy + 1e-6))
        j1 = int(np.ceil((north - parent.y0) / parent.dy - 1e-6))
        # A child needs a ring of parent cells around it for its boundary and feedback.
        if i0 < 2 or j0 < 2 or i1 > parent.nx - 2 or j1 > parent.ny - 2:
            raise InputError(self.path, spec.field + ".extent", f"grid {name!r} must lie "
                             f"inside its parent {parent.name!r} {parent.bounds_text} with at "
                             "least two parent cells to spare on every side")
        if i1 - i0 < 2 or j1 - j0 < 2:
            raise InputError(self.path, spec.field + ".extent", "covers fewer than 2 x 2 "
                             "parent cells")
        r = spec.ratio
        self._check_cells(spec, (i1 - i0) * r, (j1 - j0) * r, "ratio")
        return Grid(nx=(i1 - i0) * r, ny=(j1 - j0) * r, x0=parent.x0 + i0 * parent.dx,
                    y0=parent.y0 + j0 * parent.dy, dx=parent.dx / r, dy=parent.dy / r,
                    crs=self.crs, name=name)

    def _check_cells(self, spec: GridSpec, nx: int, ny: int, key: str) -> None:
        cells = REGION_RANGES["cells"]
        if nx < 2 or ny < 2 or cells.problem(nx * ny):
            raise InputError(self.path, f"{spec.field}.{key}", f"grid {spec.name!r} would "
                             f"have {nx} x {ny} cells; a grid needs at least 2 x 2 and at "
                             f"most {cells.high:,.0f} cells: change its extent or spacing")

    # -- fields -----------------------------------------------------------------------
    def elevation(self, grid: Grid, findings: list[Finding] | None = None) -> np.ndarray:
        """Ground / sea-bed elevation (m, positive up) on ``grid`` from the DEM sources.

        Sources are laid down coarsest first; each finer source replaces what lies under
        it, blended over BLEND_CELLS cells inside its edge. Holes surrounded by land are
        filled from the nearest values (with a warning, or a finding appended to
        ``findings``: :func:`~tsunami.errors.input_warning`); holes touching water are errors.
        """
        layers = []
        for k, dem in enumerate(self.dems):
            raster = self._raster(k)
            values = resample(raster, grid)
            if np.isfinite(values).any():
                layers.append((min(raster.resolution), dem, values))
        if not layers:
            raise InputError(self.path, "dem", f"no DEM source covers grid {grid.name!r} "
                             f"{grid.bounds_text}")
        layers.sort(key=lambda item: -item[0])
        elevation = np.full(grid.shape, np.nan)
        for _, _, values in layers:
            covered = np.isfinite(values)
            if np.isfinite(elevation).any():
                # Distance inside the source coverage; beyond the grid edge it goes on.
                inside = ndimage.distance_transform_edt(
                    np.pad(covered, 1, mode="edge"))[1:-1, 1:-1]
                weight = np.clip(inside / BLEND_CELLS, 0.0, 1.0)
                weight = np.where(np.isfinite(elevation), weight, 1.0)
            else:
                weight = np.ones(grid.shape)
            blended = weight * values + (1 - weight) * np.nan_to_num(elevation)
            elevation = np.where(covered, blended, elevation)
        return self._fill_holes(elevation, grid, [d for _, d, _ in layers], findings)

    def _raster(self, k: int) -> Raster:
        if k not in self._rasters:
            self._rasters[k] = self.dems[k].read(self.path)
        return self._rasters[k]

    def _fill_holes(self, elevation: np.ndarray, grid: Grid, dems,
                    findings: list[Finding] | None) -> np.ndarray:
        holes = ~np.isfinite(elevation)
        if not holes.any():
            return elevation
        if holes.all():
            raise InputError(self.path, "dem", f"no DEM value on grid {grid.name!r}")
        _, (rows, cols) = ndimage.distance_transform_edt(holes, return_indices=True)
        nearest = elevation[rows, cols]
        ring = ndimage.binary_dilation(holes) & ~holes
        labels, count = ndimage.label(holes)
        for k in range(1, count + 1):
            hole = labels == k
            edge = ndimage.binary_dilation(hole) & ring
            if np.any(elevation[edge] <= 0):
                j, i = np.argwhere(hole)[0]
                files = ", ".join(d.path.name for d in dems)
                raise InputError(self.path, "dem", f"the DEM ({files}) has a hole of "
                                 f"{int(hole.sum())} cells next to water on grid "
                                 f"{grid.name!r}, near x = {grid.x[i]:.6f}, y = {grid.y[j]:.6f};"
                                 " fill it or add a source that covers it")
        input_warning(Finding(str(self.path), "dem", f"grid {grid.name!r}: "
                              f"{int(holes.sum())} cells without DEM data on land filled from "
                              "the nearest values"), findings, stacklevel=2)
        return np.where(holes, nearest, elevation)

    def manning(self, grid: Grid) -> float | np.ndarray:
        """Manning's n (s/m^(1/3)) on ``grid``: a number or a resampled raster."""
        spec = self.spec(grid.name)
        if isinstance(spec.manning, int | float):
            return float(spec.manning)
        raster = read_raster(spec.manning, config=self.path, field=f"{spec.field}.manning",
                             crs=None, local=self.crs is None)
        values = resample(raster, grid, method="nearest")
        if not np.all(np.isfinite(values)):
            raise InputError(self.path, f"{spec.field}.manning", f"{spec.manning.name} does "
                             f"not cover grid {grid.name!r}")
        within = REGION_RANGES["manning"]
        if np.any(values < within.low) or np.any(values > within.high):
            raise InputError(self.path, f"{spec.field}.manning", f"{spec.manning.name}: "
                             f"values must lie {within.describe()}")
        return values

    def children(self, name: str) -> list[GridSpec]:
        return [g for g in self.grids if g.parent == name]


def _dem(t: Table, region_crs: CRS | None) -> DemSource:
    t.check_keys({"path", "format", "crs", "vertical", "variable", "nodata"}, {"path"})
    local = region_crs is None
    crs = None
    if t.has("crs"):
        crs = parse_crs(t.str("crs"), t.source, t.field("crs"))
        if crs is None and not local:
            raise t.error("crs", "a DEM in a local frame cannot be placed in a georeferenced "
                          f"region ({region_crs.name}): give the DEM's CRS (an EPSG code or "
                          "WKT)")
        if crs is not None and local:
            raise t.error("crs", f"a DEM in {crs.name} cannot be placed in a region in a "
                          "local frame; set crs = \"local\" to read its coordinates as "
                          "metres of that frame")
    return DemSource(
        path=t.path("path"),
        fmt=t.str("format", choices={"geotiff", "esri-ascii", "netcdf", "xyz"}),
        crs=crs, local=local,
        vertical=t.str("vertical", "elevation", choices={"elevation", "depth"}),
        variable=t.str("variable"), nodata=t.number("nodata"), field=t.name)


def _unique_name(t: Table, taken: list[str], kind: str) -> str:
    """A ``[[gauge]]``/``[[town]]`` name: usable as a file name and not taken already
    (two towns of one name would overwrite each other's products)."""
    name = check_name(t.data.get("name"), t.source, t.field("name"))
    if name in taken:
        raise t.error("name", f"{kind} name {name!r} repeats (also {kind}[{taken.index(name)}])")
    return name


def check_output_crs(crs: CRS, source: str | Path | None, field: str) -> None:
    """Published layers are on square cells in metres: ``crs`` must be projected in m."""
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter"):
        raise InputError(source, field, f"{crs.name} is not a projected CRS in metres; the "
                         "published layers need one (e.g. EPSG:6679, a JGD2011 zone)")


def _check_extent(t: Table, extent: list[float], crs: CRS | None) -> None:
    """An extent lies where its CRS is valid: geographic within -180...360 E and +-89 N,
    projected and local within the Earth's circumference (and, projected, on a place
    the CRS can map back to longitude and latitude)."""
    west, east, south, north = extent
    if not (east > west and north > south):
        raise t.error("extent", "expected [west, east, south, north] with east > west "
                      "and north > south")
    if crs is not None and crs.is_geographic:
        checks = [("extent_lon", west), ("extent_lon", east), ("extent_lat", south),
                  ("extent_lat", north)]
    else:
        checks = [("extent_m", v) for v in extent]
    for kind, value in checks:
        if problem := REGION_RANGES[kind].problem(value):
            raise t.error("extent", f"{problem} (in {crs.name if crs else 'the local frame'})")
    if crs is not None and crs.is_geographic and east - west > 360.0:
        raise t.error("extent", f"spans {east - west:g} degrees of longitude; at most 360")
    if crs is not None and not crs.is_geographic:
        to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
        lon, lat = to_lonlat.transform([west, east, west, east], [south, south, north, north])
        if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))
                and np.all(np.abs(lat) <= 90.0)):
            raise t.error("extent", f"{extent} lies outside the area {crs.name} can map")


def _grid_spec(t: Table, crs: CRS | None) -> GridSpec:
    t.check_keys({"name", "extent", "spacing", "parent", "ratio", "manning", "linear_depth",
                  "boundary", "scheme"}, {"name"})
    name = check_name(t.data.get("name"), t.source, t.field("name"))
    extent = t.numbers("extent", 4)
    if extent is not None:
        _check_extent(t, extent, crs)
    spacing = t.numbers("spacing")
    if spacing is not None:
        if len(spacing) == 1:
            spacing = spacing * 2
        if len(spacing) != 2:
            raise t.error("spacing", "expected a positive number or [dx, dy]")
        within = REGION_RANGES["spacing_deg" if crs is not None and crs.is_geographic
                               else "spacing_m"]
        for value in spacing:
            if problem := within.problem(value):
                raise t.error("spacing", problem)
    parent = t.str("parent")
    ratio = t.integer("ratio", 3, minimum=int(REGION_RANGES["ratio"].low),
                      maximum=int(REGION_RANGES["ratio"].high))
    if ratio % 2 == 0:
        raise t.error("ratio", f"must be odd (cells align centre on centre), got {ratio}")
    if parent is not None and spacing is not None:
        raise t.error("spacing", "a nested grid's spacing follows from its parent and ratio")
    manning: float | Path
    if isinstance(t.data.get("manning"), str):
        manning = t.path("manning")
    else:
        manning = t.number("manning", 0.025, within=REGION_RANGES["manning"])
    boundary = t.data.get("boundary", "open")
    choices = {"open", "wall"}
    if isinstance(boundary, str):
        if boundary not in choices:
            raise t.error("boundary", f"{boundary!r} is not one of {sorted(choices)}")
        boundaries = dict.fromkeys(SIDES, boundary)
    else:
        sides = t.table("boundary")
        sides.check_keys(set(SIDES))
        boundaries = {s: sides.str(s, "open", choices=choices) for s in SIDES}
    if parent is not None and "boundary" in t.data:
        raise t.error("boundary", "a nested grid's edges are driven by its parent")
    linear_depth = t.number("linear_depth", within=REGION_RANGES["linear_depth"])
    return GridSpec(name, tuple(extent) if extent else None,
                    tuple(spacing) if spacing else None, parent, ratio, manning,
                    np.inf if linear_depth is None else linear_depth, boundaries, t.name,
                    t.str("scheme", "auto", choices={"auto", "leapfrog", "fv2"}))


def _check_fragility(t: Table, spec: ExposureSpec) -> None:
    """Fail at load time, not in the middle of a forecast, on a bad fragility choice."""
    from tsunami.damage.fragility import DEFAULT_SOURCE, load_fragility

    table = load_fragility(spec.fragility)
    source = spec.fragility_source or DEFAULT_SOURCE
    if source not in table.source_ids():
        raise t.error("fragility_source", f"{source!r} is not in {table.path.name}; it "
                      f"has {table.source_ids()}")
