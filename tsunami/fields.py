"""Model fields as CF-style xarray Datasets, and atomic NetCDF writing.

Every variable carries ``units`` and ``long_name``; every grid carries its coordinates
(cell centres) and its CRS as a CF grid-mapping variable (``crs``), or a note that it is
a local Cartesian frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from tsunami.atomic import atomic_path
from tsunami.grid import Grid


def grid_coords(grid: Grid) -> dict[str, xr.DataArray]:
    """CF coordinate variables for the cell centres of ``grid``."""
    if grid.spherical:
        return {
            "lat": xr.DataArray(grid.y, dims="lat", attrs={
                "standard_name": "latitude", "long_name": "latitude of cell centre",
                "units": "degrees_north", "axis": "Y"}),
            "lon": xr.DataArray(grid.x, dims="lon", attrs={
                "standard_name": "longitude", "long_name": "longitude of cell centre",
                "units": "degrees_east", "axis": "X"}),
        }
    kind = "projection" if grid.crs is not None else "local Cartesian"
    return {
        "y": xr.DataArray(grid.y, dims="y", attrs={
            "standard_name": "projection_y_coordinate" if grid.crs is not None else "",
            "long_name": f"{kind} y of cell centre (northward)", "units": "m", "axis": "Y"}),
        "x": xr.DataArray(grid.x, dims="x", attrs={
            "standard_name": "projection_x_coordinate" if grid.crs is not None else "",
            "long_name": f"{kind} x of cell centre (eastward)", "units": "m", "axis": "X"}),
    }


def grid_dims(grid: Grid) -> tuple[str, str]:
    return ("lat", "lon") if grid.spherical else ("y", "x")


def crs_variable(grid: Grid) -> xr.DataArray:
    """The CF grid-mapping variable ``crs`` (scalar, attributes only)."""
    if grid.crs is None:
        attrs = {"long_name": "local Cartesian frame",
                 "comment": "coordinates in metres in a local frame without georeference"}
    else:
        attrs = dict(grid.crs.to_cf())
        attrs["crs_wkt"] = grid.crs.to_wkt()
        attrs["spatial_ref"] = attrs["crs_wkt"]
        epsg = grid.crs.to_epsg()
        if epsg:
            attrs["epsg_code"] = f"EPSG:{epsg}"
    return xr.DataArray(np.int32(0), attrs=attrs)


def grid_dataset(grid: Grid, variables: dict[str, tuple[np.ndarray, dict]],
                 attrs: dict | None = None) -> xr.Dataset:
    """A Dataset of cell-centred ``variables`` {name: (array, attrs)} on ``grid``."""
    dims = grid_dims(grid)
    data_vars = {}
    for name, (values, var_attrs) in variables.items():
        va = dict(var_attrs)
        va["grid_mapping"] = "crs"
        data_vars[name] = xr.DataArray(np.asarray(values), dims=dims, attrs=va)
    data_vars["crs"] = crs_variable(grid)
    ds = xr.Dataset(data_vars, coords=grid_coords(grid))
    ds.attrs.update({"Conventions": "CF-1.8", "grid_name": grid.name,
                     "grid_spacing": f"{grid.dx:.9g} x {grid.dy:.9g} {grid.units}"})
    if attrs:
        ds.attrs.update(attrs)
    return ds


MAXIMA = ("max_eta", "max_depth", "max_speed", "max_momentum_flux", "arrival_time",
          "elevation")


def maxima_dataset(model, attrs: dict | None = None,
                   covered: np.ndarray | None = None) -> xr.Dataset:
    """Running maxima and arrival time of ``model`` (a ShallowWaterModel).

    NaN marks cells the water never reached; ``max_depth`` is given on initially dry land
    only (0 where that land stayed dry) and NaN at sea. ``covered`` marks cells a finer
    nested grid covers; it is stored as ``covered_by_finer_grid``.
    """
    h = model.h.astype(np.float64)
    eta_max = model.eta_max.astype(np.float64)
    reached = np.isfinite(eta_max)
    wet_max = np.where(reached, eta_max, np.nan)
    land = ~model.initially_wet
    max_depth = np.where(land, np.where(reached, np.maximum(wet_max + h, 0.0), 0.0), np.nan)
    speed = np.where(reached, model.speed_max.astype(np.float64), np.nan)
    flux = np.where(reached, model.momentum_flux_max.astype(np.float64), np.nan)
    arrival = model.arrival_time.astype(np.float64)
    threshold = model.arrival_threshold
    variables = {
        "max_eta": (wet_max, {
            "long_name": "maximum water surface elevation above the still-water level",
            "units": "m"}),
        "max_depth": (max_depth, {
            "long_name": "maximum inundation depth on initially dry land",
            "units": "m", "comment": "0 on land that stayed dry; NaN at sea"}),
        "max_speed": (speed, {"long_name": "maximum flow speed", "units": "m s-1"}),
        "max_momentum_flux": (flux, {
            "long_name": "maximum momentum flux per unit width (depth times speed squared)",
            "units": "m3 s-2"}),
        "arrival_time": (arrival, {
            "long_name": f"tsunami arrival time: first rise of {threshold:g} m above the "
                         "still level (sea at rest, or ground on dry land)",
            "units": "s", "comment": "seconds after the start of the simulation (origin)"}),
        "elevation": (-h, {
            "long_name": "ground or sea-bed elevation above the still-water level",
            "units": "m", "positive": "up"}),
    }
    if covered is not None:
        variables["covered_by_finer_grid"] = (covered.astype(np.int8), {
            "long_name": "1 where a finer nested grid covers the cell (use its fields there)",
            "units": "1", "flag_values": "0 1"})
    base = {"title": f"tsunami maxima on grid {model.grid.name}",
            "arrival_threshold_m": threshold, "simulated_time_s": model.time,
            "dry_depth_m": model.dry_depth, "numerical_scheme": model.scheme}
    base.update(attrs or {})
    return grid_dataset(model.grid, variables, base)


def merge_finest(fields: dict[str, xr.Dataset], grids: dict[str, Grid], name: str,
                 extent: tuple[float, float, float, float]) -> xr.Dataset:
    """Finest-available fields over ``extent`` (west, east, south, north).

    The merged lattice is that of the finest grid meeting the extent; each of its cells
    takes the values of the finest grid that contains its centre (nearest cell), so a
    town straddling nest levels gets one seamless field. ``source_grid`` records which.
    """
    west, east, south, north = extent
    meeting = [g for g in grids.values() if g.bounds[0] < east and g.bounds[2] > west
               and g.bounds[1] < north and g.bounds[3] > south]
    if not meeting:
        raise ValueError(f"town {name!r}: no grid covers {extent}")
    finest = min(meeting, key=lambda g: g.dx)
    i0 = int(np.floor((max(west, min(g.bounds[0] for g in meeting)) - finest.x0) / finest.dx))
    i1 = int(np.ceil((min(east, max(g.bounds[2] for g in meeting)) - finest.x0) / finest.dx))
    j0 = int(np.floor((max(south, min(g.bounds[1] for g in meeting)) - finest.y0) / finest.dy))
    j1 = int(np.ceil((min(north, max(g.bounds[3] for g in meeting)) - finest.y0) / finest.dy))
    town = Grid(nx=i1 - i0, ny=j1 - j0, x0=finest.x0 + i0 * finest.dx,
                y0=finest.y0 + j0 * finest.dy, dx=finest.dx, dy=finest.dy, crs=finest.crs,
                name=name)
    xs, ys = np.meshgrid(town.x, town.y)
    merged = {v: np.full(town.shape, np.nan) for v in MAXIMA}
    source = np.full(town.shape, -1, np.int16)
    order = sorted(meeting, key=lambda g: -g.dx)  # coarsest first; finer ones overwrite
    names = [g.name for g in order]
    for k, g in enumerate(order):
        cols = np.floor((xs - g.x0) / g.dx).astype(int)
        rows = np.floor((ys - g.y0) / g.dy).astype(int)
        inside = (cols >= 0) & (cols < g.nx) & (rows >= 0) & (rows < g.ny)
        ds = fields[g.name]
        for v in MAXIMA:
            merged[v][inside] = ds[v].values[rows[inside], cols[inside]]
        source[inside] = k
    template = next(iter(fields.values()))
    variables = {v: (merged[v], dict(template[v].attrs)) for v in MAXIMA}
    for v in variables.values():
        v[1].pop("grid_mapping", None)
    variables["source_grid"] = (source, {
        "long_name": "index into the source_grids attribute of the grid each cell came from",
        "units": "1", "_FillValue_meaning": "-1: outside every grid"})
    attrs = {k: v for k, v in template.attrs.items()
             if k not in ("title", "grid_name", "grid_spacing", "runup_m")}
    attrs.update(title=f"finest-available tsunami maxima for {name}",
                 source_grids=" ".join(names), town=name)
    return grid_dataset(town, variables, attrs)


def netcdf_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """How fields are stored in NetCDF: compressed, floats as float32 (the model's
    precision) with NaN as the fill value."""
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.ndim >= 1:
            encoding[name] = {"zlib": True, "complevel": 4}
            if var.dtype.kind == "f":
                encoding[name].update(dtype="float32", _FillValue=np.float32(np.nan))
    return encoding


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` atomically (:func:`netcdf_encoding`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, encoding=netcdf_encoding(ds))
    return path
