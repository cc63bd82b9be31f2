"""Raster layers for publication: Cloud-Optimized GeoTIFFs in a projected output CRS.

From a town's merged finest-available fields (``town_<name>.nc``) this module makes one
layer per quantity, reprojected onto a square grid in the output CRS (by default the
JGD2011 plane-rectangular zone, EPSG:6669-6687, that contains the town), with cell edges
on whole multiples of the resolution:

| layer | unit | dtype | reprojection | overviews |
|---|---|---|---|---|
| max_depth | m | float32 | max | max |
| max_eta | m | float32 | max | max |
| max_speed | m s-1 | float32 | max | max |
| max_momentum_flux | m3 s-2 | float32 | max | max |
| arrival_time | minutes after origin | float32 | nearest | min (earliest) |
| depth_class | class 1-8 | uint8 + colour table | from max_depth | max (deepest class) |

Peaks are never averaged away: reprojection takes the maximum of the source cells a
target cell covers, and each overview cell (2 x 2, 4 x 4, ... cells) takes the maximum,
so a flooded block stays flooded when a web map or QGIS zooms out; arrival time takes the
earliest arrival, and the class layer the deepest class (the class of the maximum depth).

Float layers carry nodata -9999 (sea, outside the grids, or never reached); dry land in
``max_depth`` is 0. The classified layer uses the detailed (8-class) palette of MLIT's
hazard-map guide (:mod:`tsunami.depth_classes`); 0 means not flooded and is its nodata.
Its class names travel in a GDAL PAM sidecar (``.tif.aux.xml``: category names and a
raster attribute table), which ``gdalinfo`` and QGIS read. COGs (:mod:`tsunami.cog`):
256 x 256 tiles, DEFLATE (predictor 3 for floats, 2 for the classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.warp import Resampling, reproject

from tsunami import cog
from tsunami.depth_classes import DEPTH_CLASSES, FLOODED, classify_depth, lower_bound

__all__ = ["DEPTH_CLASSES", "FLOODED", "LAYERS", "NODATA", "Layer", "OutputGrid",
           "classify_depth", "default_output_crs", "nice_resolution", "output_grid",
           "reproject_field", "town_layers", "write_cog"]

NODATA = -9999.0

LAYERS = {
    "max_depth": dict(variable="max_depth", unit="m", resampling=Resampling.max,
                      overview="max", title="maximum inundation depth on land"),
    "max_eta": dict(variable="max_eta", unit="m", resampling=Resampling.max, overview="max",
                    title="maximum water surface elevation above the still-water level"),
    "max_speed": dict(variable="max_speed", unit="m s-1", resampling=Resampling.max,
                      overview="max", title="maximum flow speed"),
    "max_momentum_flux": dict(variable="max_momentum_flux", unit="m3 s-2",
                              resampling=Resampling.max, overview="max",
                              title="maximum momentum flux (depth x speed squared)"),
    "arrival_time": dict(variable="arrival_time", unit="min", resampling=Resampling.nearest,
                         overview="min",
                         title="tsunami arrival time, minutes after the origin time"),
}


def default_output_crs(lon: float, lat: float) -> CRS:
    """The JGD2011 plane-rectangular zone (EPSG:6669-6687) for a point.

    Zones are assigned by prefecture and municipality (MLIT notice 2002 No. 9); this picks
    the zones whose EPSG area of use contains the point and, of those (or of all, offshore),
    the one whose origin meridian is nearest. Set ``output_crs`` in the region file where a
    prefecture's own choice differs.
    """
    best, best_key = None, None
    for code in range(6669, 6688):
        crs = CRS.from_epsg(code)
        area = crs.area_of_use
        inside = area.west <= lon <= area.east and area.south <= lat <= area.north
        origin = next(p.value for p in crs.coordinate_operation.params
                      if "longitude" in p.name.lower())
        key = (not inside, abs(origin - lon))
        if best_key is None or key < best_key:
            best, best_key = crs, key
    return best


def nice_resolution(spacing_m: float) -> float:
    """The 1-2-5 step nearest (in log scale) to a grid spacing in metres."""
    steps = [m * 10.0**e for e in range(-1, 5) for m in (1.0, 2.0, 5.0)]
    return min(steps, key=lambda s: abs(math.log(s / spacing_m)))


@dataclass
class Layer:
    """A raster in the output CRS (north-up ``values``), ready to write."""

    name: str
    values: np.ndarray
    transform: Affine
    crs: CRS
    unit: str
    title: str
    nodata: float
    overview: str = "max"  # how overview cells combine theirs: "max" or "min"
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    categories: dict[int, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        ny, nx = self.values.shape
        t = self.transform
        return (t.c, t.f + ny * t.e, t.c + nx * t.a, t.f)


@dataclass
class OutputGrid:
    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return self.transform.a


def town_crs(ds: xr.Dataset) -> CRS | None:
    attrs = ds["crs"].attrs
    wkt = attrs.get("crs_wkt")
    return CRS.from_wkt(wkt) if wkt else None


def source_grid(ds: xr.Dataset) -> tuple[Affine, CRS]:
    """North-up transform and CRS of a town dataset (cell-centre coordinates)."""
    xname, yname = ("lon", "lat") if "lon" in ds.coords else ("x", "y")
    x, y = ds[xname].values, ds[yname].values
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    crs = town_crs(ds)
    if crs is None:
        raise ValueError(f"town {ds.attrs.get('town', '?')}: fields in a local frame have no "
                         "CRS; GIS products need a georeferenced region")
    return Affine(dx, 0, x[0] - dx / 2, 0, -dy, y[-1] + dy / 2), crs


def output_grid(ds: xr.Dataset, crs: CRS | None = None,
                resolution: float | None = None) -> OutputGrid:
    """A square grid in ``crs`` covering the town, edges on multiples of the resolution."""
    transform, src_crs = source_grid(ds)
    ny, nx = ds["max_depth"].shape
    west, north = transform.c, transform.f
    east, south = west + nx * transform.a, north + ny * transform.e
    if crs is None:
        lon, lat = Transformer.from_crs(src_crs, 4326, always_xy=True).transform(
            (west + east) / 2, (south + north) / 2)
        crs = default_output_crs(lon, lat)
    to_out = Transformer.from_crs(src_crs, crs, always_xy=True)
    xs = np.concatenate([np.linspace(west, east, 50), np.full(50, east),
                         np.linspace(east, west, 50), np.full(50, west)])
    ys = np.concatenate([np.full(50, south), np.linspace(south, north, 50),
                         np.full(50, north), np.linspace(north, south, 50)])
    ox, oy = to_out.transform(xs, ys)
    if resolution is None:
        cx, cy = to_out.transform([west, west + transform.a], [north, north])
        gx, gy = to_out.transform([west, west], [north, north + transform.e])
        spacing = math.sqrt(math.hypot(cx[1] - cx[0], cy[1] - cy[0])
                            * math.hypot(gx[1] - gx[0], gy[1] - gy[0]))
        resolution = nice_resolution(spacing)
    x0 = math.floor(min(ox) / resolution) * resolution
    x1 = math.ceil(max(ox) / resolution) * resolution
    y0 = math.floor(min(oy) / resolution) * resolution
    y1 = math.ceil(max(oy) / resolution) * resolution
    return OutputGrid(crs, Affine(resolution, 0, x0, 0, -resolution, y1),
                      round((x1 - x0) / resolution), round((y1 - y0) / resolution))


def reproject_field(ds: xr.Dataset, variable: str, grid: OutputGrid,
                    resampling: Resampling) -> np.ndarray:
    """A town variable on the output grid (NaN where there is no value)."""
    transform, src_crs = source_grid(ds)
    values = ds[variable].values.astype(np.float32)[::-1]  # south-up rows -> north-up
    out = np.full((grid.height, grid.width), np.nan, np.float32)
    reproject(source=values, destination=out, src_transform=transform, src_crs=src_crs,
              dst_transform=grid.transform, dst_crs=grid.crs, src_nodata=np.nan,
              dst_nodata=np.nan, resampling=resampling)
    return out


def town_layers(ds: xr.Dataset, crs: CRS | None = None, resolution: float | None = None,
                tags: dict[str, str] | None = None) -> tuple[list[Layer], OutputGrid]:
    """All published layers of one town (a field the town lacks is left out)."""
    grid = output_grid(ds, crs, resolution)
    tags = dict(tags or {})
    layers = []
    depth = None
    for name, spec in LAYERS.items():
        if spec["variable"] not in ds:
            continue
        values = reproject_field(ds, spec["variable"], grid, spec["resampling"])
        if name == "arrival_time":
            values = values / 60.0
        if name == "max_depth":
            depth = values
        layers.append(Layer(name, np.where(np.isfinite(values), values, NODATA).astype(
            np.float32), grid.transform, grid.crs, spec["unit"], spec["title"], NODATA,
            spec["overview"], tags=dict(tags, resampling=spec["resampling"].name,
                                        overview_resampling=spec["overview"])))
    colormap = {0: (0, 0, 0, 0)}
    categories = {0: f"not flooded (< {FLOODED:g} m)"}
    for k, (_, label, rgb) in enumerate(DEPTH_CLASSES, start=1):
        colormap[k] = (*rgb, 255)
        categories[k] = label
    layers.append(Layer("depth_class", classify_depth(depth), grid.transform, grid.crs,
                        "class", "inundation depth class (MLIT 2016 detailed palette)", 0,
                        "max", colormap, categories,
                        dict(tags, resampling="from max_depth",
                             overview_resampling="max (deepest class)")))
    return layers, grid


def write_cog(layer: Layer, path: Path) -> Path:
    """Write ``layer`` as a Cloud-Optimized GeoTIFF with overviews by its rule
    (:mod:`tsunami.cog`) and, for a classified layer, the ``.aux.xml`` sidecar of class
    names; caller handles atomicity."""
    tags = dict(layer.tags, units=layer.unit, long_name=layer.title, layer=layer.name)
    if layer.categories:
        tags["classes"] = "; ".join(f"{k}={v}" for k, v in layer.categories.items())
    cog.write_cog(path, [layer.values], transform=layer.transform, crs=layer.crs,
                  nodata=layer.nodata, overview=layer.overview, tags=tags,
                  descriptions=[f"{layer.title} ({layer.unit})"], units=[layer.unit],
                  colormap=layer.colormap)
    if layer.categories:
        write_categories(layer, Path(f"{path}.aux.xml"))
    return path


def write_categories(layer: Layer, path: Path) -> Path:
    """GDAL PAM sidecar of a classified layer: category names (what ``gdalinfo`` lists
    and GDAL-based clients label classes with) and a thematic raster attribute table
    (value, name, depth range, colour)."""
    names = "".join(f"<Category>{escape(layer.categories.get(k, ''))}</Category>"
                    for k in range(max(layer.categories) + 1))
    # (name, GFT type: 0 int 1 real 2 string, GFU usage); a class ends where the next begins
    columns = [("value", 0, 5), ("class_name", 2, 2), ("depth_min_m", 1, 0), ("red", 0, 6),
               ("green", 0, 7), ("blue", 0, 8), ("alpha", 0, 9)]
    fields = "".join(f'<FieldDefn index="{i}"><Name>{n}</Name><Type>{t}</Type>'
                     f"<Usage>{u}</Usage></FieldDefn>" for i, (n, t, u) in enumerate(columns))
    rows = []
    for k, label in sorted(layer.categories.items()):
        r, g, b, a = layer.colormap[k]
        values = [k, escape(label), f"{0.0 if k == 0 else lower_bound(k):g}", r, g, b, a]
        rows.append(f'<Row index="{k}">' + "".join(f"<F>{v}</F>" for v in values) + "</Row>")
    path.write_text(
        "<PAMDataset>\n  <PAMRasterBand band=\"1\">\n"
        f"    <CategoryNames>{names}</CategoryNames>\n"
        f'    <GDALRasterAttributeTable tableType="thematic">{fields}{"".join(rows)}'
        "</GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n",
        encoding="utf-8")
    return path
