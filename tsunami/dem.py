"""Elevation and displacement rasters: reading any supported format and resampling.

Formats: GeoTIFF and ESRI ASCII grid (.asc) through GDAL; NetCDF through xarray (1-D
x/y or lon/lat coordinates, CRS from the CF grid mapping, which GDAL's heuristics do not
always find); and regular x/y/z text grids (.xyz/.txt/.csv, read here because GDAL's XYZ
driver insists on a sort order that real exports do not always keep). Every raster is
returned as a :class:`Raster`: a north-up array of values with its affine transform, CRS
and a description of where it came from, so errors can name the file.

Resampling onto a :class:`~tsunami.grid.Grid` uses rasterio's warper: area-averaging
where the source is finer than the grid (a coarse cell gets the mean elevation it covers,
which keeps volumes right), bilinear where it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject

from tsunami.config import Range, read_text
from tsunami.errors import InputError
from tsunami.grid import Grid

RASTER_FORMATS = {".tif": "geotiff", ".tiff": "geotiff", ".asc": "esri-ascii",
                  ".nc": "netcdf", ".nc4": "netcdf", ".xyz": "xyz", ".txt": "xyz",
                  ".csv": "xyz"}
# GDAL cannot warp between local (engineering) frames; within one local frame a
# projected CRS stands in on both sides, so the warp is the pure affine resampling.
_LOCAL_STAND_IN = CRS.from_epsg(3857)


@dataclass
class Raster:
    """A north-up raster: ``values[row, col]``, row 0 at the north edge; NaN = no data."""

    values: np.ndarray
    transform: Affine
    crs: CRS | None
    source: str

    @property
    def resolution(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        ny, nx = self.values.shape
        west, north = self.transform.c, self.transform.f
        return (west, north + ny * self.transform.e, west + nx * self.transform.a, north)


def parse_crs(value: str | None, source: str | Path | None, field: str) -> CRS | None:
    """A CRS from user text; ``"local"`` (or None) is a local Cartesian frame in metres."""
    if value is None or str(value).strip().lower() in ("local", "cartesian", "none"):
        return None
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise InputError(source, field, f"unknown CRS {value!r} ({exc})") from None


def read_raster(path: str | Path, *, fmt: str | None = None, crs: CRS | None = None,
                variable: str | None = None, nodata: float | None = None,
                field: str = "path", config: str | Path | None = None,
                local: bool = False) -> Raster:
    """Read a single-band raster into float64 with NaN for no data.

    ``crs`` overrides or supplies the file's CRS; ``local=True`` says the raster is in a
    local Cartesian frame (metres, no CRS). ``config``/``field`` name the file and key
    that pointed here, for error messages.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(config, field, f"file not found: {path}")
    fmt = fmt or RASTER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(config, field, f"cannot tell the format of {path.name}; set "
                         "format = geotiff | esri-ascii | netcdf | xyz")
    if fmt == "xyz":
        raster = _read_xyz(path, config, field)
    elif fmt == "netcdf":
        raster = _read_netcdf(path, variable, config, field)
    elif fmt in ("geotiff", "esri-ascii"):
        raster = _read_gdal(path, config, field)
    else:
        raise InputError(config, field.replace("path", "format"), f"unknown format {fmt!r}")
    t = raster.transform
    if not (np.all(np.isfinite([t.a, t.c, t.e, t.f])) and t.a > 0 and t.e < 0):
        raise InputError(config, field, f"{path.name}: cell size and origin must be finite "
                         f"with a positive cell size, got cell size {t.a:g} x {-t.e:g} at "
                         f"({t.c:g}, {t.f:g})")
    if nodata is not None:
        raster.values[raster.values == nodata] = np.nan
    if local:
        raster.crs = None
    elif crs is not None:
        raster.crs = crs
    elif raster.crs is None:
        raise InputError(config, field, f"{path.name} carries no CRS: give its crs (an EPSG "
                         "code or WKT, or \"local\" for a laboratory frame)")
    if not np.isfinite(raster.values).any():
        raise InputError(config, field, f"{path.name} holds no valid values")
    return raster


def check_values(raster: Raster, within: Range, config: str | Path | None, field: str
                 ) -> None:
    """Refuse a raster with a valid value outside ``within``: usually an undeclared
    no-data value (-9999, -32768, 3.4e38) that would be read as ground or uplift."""
    values = raster.values[np.isfinite(raster.values)]
    for value in (float(values.min()), float(values.max())):
        if problem := within.problem(value):
            raise InputError(config, field, f"{Path(raster.source).name}: a value of "
                             f"{problem}; an undeclared no-data value? Set nodata or fix the "
                             "file")


def _read_gdal(path: Path, config, field) -> Raster:
    try:
        with rasterio.open(path) as src:
            if src.count < 1:
                raise InputError(config, field, f"{path.name} has no raster band")
            values = src.read(1, masked=True).astype(np.float64).filled(np.nan)
            transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise InputError(config, field, f"cannot read {path.name}: {exc}") from None
    if transform.b != 0 or transform.d != 0:
        raise InputError(config, field, f"{path.name} is rotated; only north-up rasters "
                         "are supported")
    if transform.e > 0:  # stored south-up: flip to north-up
        values = values[::-1]
        transform = Affine(transform.a, 0, transform.c, 0, -transform.e,
                           transform.f + transform.e * values.shape[0])
    return Raster(values, transform, CRS.from_user_input(crs) if crs else None, str(path))


_X_NAMES = ("x", "lon", "longitude", "easting")
_Y_NAMES = ("y", "lat", "latitude", "northing")


def _read_netcdf(path: Path, variable: str | None, config, field) -> Raster:
    import xarray as xr

    try:
        ds = xr.open_dataset(path, decode_times=False)
    except (OSError, ValueError) as exc:
        raise InputError(config, field, f"cannot read {path.name}: {exc}") from None
    with ds:
        grids = [n for n, v in ds.data_vars.items() if v.ndim == 2]
        if variable is None:
            if len(grids) != 1:
                raise InputError(config, field.replace("path", "variable"),
                                 f"{path.name} holds {len(grids)} 2-D variables {grids}; "
                                 "name one with variable = \"...\"")
            variable = grids[0]
        if variable not in ds:
            raise InputError(config, field.replace("path", "variable"),
                             f"{path.name} has no variable {variable!r}; it has {grids}")
        da = ds[variable]
        y_dim, x_dim = da.dims
        if x_dim.lower() not in _X_NAMES or y_dim.lower() not in _Y_NAMES:
            raise InputError(config, field, f"{path.name}: {variable} has dims {da.dims}; "
                             f"expected (y, x) named from {_Y_NAMES} and {_X_NAMES}")
        x, y = ds[x_dim].values.astype(float), ds[y_dim].values.astype(float)
        dx, dy = np.diff(x), np.diff(y)
        if x.size < 2 or y.size < 2 or not (np.allclose(dx, dx[0], rtol=1e-6)
                                             and np.allclose(dy, dy[0], rtol=1e-6)):
            raise InputError(config, field, f"{path.name}: coordinates are not a regular grid")
        values = da.values.astype(np.float64)
        if dy[0] > 0:  # stored south-up: flip to north-up
            values, y, dy = values[::-1], y[::-1], -dy
        crs = None
        mapping = ds.get(da.attrs.get("grid_mapping", ""), None)
        wkt = None if mapping is None else (mapping.attrs.get("crs_wkt")
                                            or mapping.attrs.get("spatial_ref"))
        if wkt:
            crs = CRS.from_user_input(wkt)
        elif x_dim.lower() in ("lon", "longitude"):
            crs = CRS.from_epsg(4326)
    transform = Affine(dx[0], 0, x[0] - dx[0] / 2, 0, dy[0], y[0] - dy[0] / 2)
    return Raster(values, transform, crs, str(path))


def _read_xyz(path: Path, config, field) -> Raster:
    """A regular grid given as x y z points (any order; comma or white space; UTF-8, BOM
    allowed)."""
    text = read_text(path, "x y z grid", field, config).replace(",", " ").splitlines()
    rows = []
    for number, line in enumerate(text, start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            rows.append([float(p) for p in parts[:3]])
        except ValueError:
            if rows:
                raise InputError(config, field, f"{path.name} line {number}: not three "
                                 f"numbers: {line.strip()!r}") from None
            continue  # a header line
        if len(parts) < 3:
            raise InputError(config, field, f"{path.name} line {number}: expected x y z")
    if len(rows) < 4:
        raise InputError(config, field, f"{path.name}: too few points for a grid")
    data = np.array(rows)
    if not np.all(np.isfinite(data[:, :2])):
        raise InputError(config, field, f"{path.name}: x and y must be finite numbers")
    xs, ys = np.unique(data[:, 0]), np.unique(data[:, 1])
    dx, dy = np.diff(xs), np.diff(ys)
    if xs.size < 2 or ys.size < 2 or not (np.allclose(dx, dx[0], rtol=1e-6)
                                         and np.allclose(dy, dy[0], rtol=1e-6)):
        raise InputError(config, field, f"{path.name}: points do not form a regular grid")
    values = np.full((ys.size, xs.size), np.nan)
    col = np.rint((data[:, 0] - xs[0]) / dx[0]).astype(int)
    row = np.rint((ys[-1] - data[:, 1]) / dy[0]).astype(int)
    values[row, col] = data[:, 2]
    transform = Affine(dx[0], 0, xs[0] - dx[0] / 2, 0, -dy[0], ys[-1] + dy[0] / 2)
    return Raster(values, transform, None, str(path))


def resample(raster: Raster, grid: Grid, method: str = "auto") -> np.ndarray:
    """Values of ``raster`` on the cells of ``grid`` (south-to-north rows); NaN uncovered.

    ``method``: "average", "bilinear", "nearest", or "auto" (average when the raster is
    finer than the grid, bilinear otherwise).
    """
    if (raster.crs is None) != (grid.crs is None):
        raise ValueError(f"{raster.source}: a local-frame raster and a georeferenced grid "
                         f"({grid.name}) cannot be combined")
    if method == "auto":
        src_dx = _resolution_in(raster, grid)
        method = "average" if src_dx < 0.67 * min(grid.dx, grid.dy) else "bilinear"
    resampling = {"average": Resampling.average, "bilinear": Resampling.bilinear,
                  "nearest": Resampling.nearest}[method]
    west, _south, _east, north = grid.bounds
    dst_transform = Affine(grid.dx, 0, west, 0, -grid.dy, north)
    out = np.full(grid.shape, np.nan)
    src_crs = raster.crs or _LOCAL_STAND_IN
    dst_crs = grid.crs or _LOCAL_STAND_IN
    reproject(source=raster.values, destination=out, src_transform=raster.transform,
              src_crs=src_crs, dst_transform=dst_transform, dst_crs=dst_crs,
              src_nodata=np.nan, dst_nodata=np.nan, resampling=resampling)
    return out[::-1].copy()


def _resolution_in(raster: Raster, grid: Grid) -> float:
    """The raster's cell size expressed in the grid's CRS units (approximately)."""
    dx, dy = raster.resolution
    size = min(dx, dy)
    if raster.crs is None or grid.crs is None or raster.crs == grid.crs:
        return size
    if raster.crs.is_geographic and not grid.crs.is_geographic:
        return size * 111_000.0 * np.cos(np.deg2rad(np.mean(raster.bounds[1::2])))
    if not raster.crs.is_geographic and grid.crs.is_geographic:
        return size / 111_000.0
    return size
