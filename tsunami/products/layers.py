"""Raster layers for publication: Cloud-Optimized GeoTIFFs in a projected output CRS.

From a town's merged finest-available fields (``town_<name>.nc``) this module makes one
layer per quantity, reprojected onto a square grid in the output CRS (by default the
JGD2011 plane-rectangular zone, EPSG:6669-6687, that contains the town), with cell edges
on whole multiples of the resolution:

| layer | unit | dtype | resampling when reprojecting |
|---|---|---|---|
| max_depth | m | float32 | max (peaks are not averaged away) |
| max_eta | m | float32 | max |
| max_speed | m s-1 | float32 | max |
| arrival_time | minutes after origin | float32 | nearest |
| depth_class | class 1-8 | uint8 + colour table | from the reprojected depth layer |

Float layers carry nodata -9999 (sea, outside the grids, or never reached); dry land in
``max_depth`` is 0. The classified layer uses the detailed (8-class) palette of MLIT's
hazard-map guide (水害ハザードマップ作成の手引き, 2016: 0.3, 0.5, 1, 3, 5, 10, 20 m breaks);
0 means not flooded (depth below 1 cm, the Cabinet Office's inundation threshold) and is
its nodata. COGs: 256 x 256 tiles, DEFLATE (predictor 3 for floats, 2 for the classes),
internal overviews resampled by nearest neighbour (averaging would understate depths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.io import MemoryFile
from rasterio.warp import Resampling, reproject

NODATA = -9999.0
FLOODED = 0.01  # m: depth counted as inundation (Cabinet Office: >= 1 cm)

# (upper bound m, label, RGB): MLIT 2016 detailed palette; class k = index + 1.
DEPTH_CLASSES = [
    (0.3, "0.01-0.3 m", (255, 255, 179)),
    (0.5, "0.3-0.5 m", (247, 245, 169)),
    (1.0, "0.5-1 m", (248, 225, 166)),
    (3.0, "1-3 m", (255, 216, 192)),
    (5.0, "3-5 m", (255, 183, 183)),
    (10.0, "5-10 m", (255, 145, 145)),
    (20.0, "10-20 m", (242, 133, 201)),
    (math.inf, ">= 20 m", (220, 122, 220)),
]

LAYERS = {
    "max_depth": dict(variable="max_depth", unit="m", resampling=Resampling.max,
                      title="maximum inundation depth on land"),
    "max_eta": dict(variable="max_eta", unit="m", resampling=Resampling.max,
                    title="maximum water surface elevation above the still-water level"),
    "max_speed": dict(variable="max_speed", unit="m s-1", resampling=Resampling.max,
                      title="maximum flow speed"),
    "arrival_time": dict(variable="arrival_time", unit="min", resampling=Resampling.nearest,
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


def classify_depth(depth: np.ndarray) -> np.ndarray:
    """Depth class 1-8 (MLIT detailed palette) where depth >= 1 cm, else 0."""
    classes = np.zeros(depth.shape, np.uint8)
    flooded = np.nan_to_num(depth, nan=0.0) >= FLOODED
    bounds = np.array([b for b, _, _ in DEPTH_CLASSES[:-1]])
    classes[flooded] = np.searchsorted(bounds, depth[flooded], side="right") + 1
    return classes


def town_layers(ds: xr.Dataset, crs: CRS | None = None, resolution: float | None = None,
                tags: dict[str, str] | None = None) -> tuple[list[Layer], OutputGrid]:
    """All published layers of one town."""
    grid = output_grid(ds, crs, resolution)
    tags = dict(tags or {})
    layers = []
    depth = None
    for name, spec in LAYERS.items():
        values = reproject_field(ds, spec["variable"], grid, spec["resampling"])
        if name == "arrival_time":
            values = values / 60.0
        if name == "max_depth":
            depth = values
        layers.append(Layer(name, np.where(np.isfinite(values), values, NODATA).astype(
            np.float32), grid.transform, grid.crs, spec["unit"], spec["title"], NODATA,
            tags=dict(tags, resampling=spec["resampling"].name)))
    colormap = {0: (0, 0, 0, 0)}
    categories = {0: "not flooded"}
    for k, (_, label, rgb) in enumerate(DEPTH_CLASSES, start=1):
        colormap[k] = (*rgb, 255)
        categories[k] = label
    layers.append(Layer("depth_class", classify_depth(depth), grid.transform, grid.crs,
                        "class", "inundation depth class (MLIT 2016 detailed palette)", 0,
                        colormap, categories, dict(tags, resampling="from max_depth")))
    return layers, grid


def write_cog(layer: Layer, path: Path) -> Path:
    """Write ``layer`` as a Cloud-Optimized GeoTIFF (caller handles atomicity)."""
    ny, nx = layer.shape
    profile = dict(driver="GTiff", width=nx, height=ny, count=1, dtype=layer.values.dtype,
                   crs=layer.crs, transform=layer.transform, nodata=layer.nodata)
    tags = dict(layer.tags, units=layer.unit, long_name=layer.title, layer=layer.name)
    if layer.categories:
        tags["classes"] = "; ".join(f"{k}={v}" for k, v in layer.categories.items())
    with MemoryFile() as memory:
        with memory.open(**profile) as dst:
            dst.write(layer.values, 1)
            dst.set_band_description(1, f"{layer.title} ({layer.unit})")
            dst.set_band_unit(1, layer.unit)
            dst.update_tags(**tags)
            if layer.colormap:
                dst.write_colormap(1, layer.colormap)
        with memory.open() as src:
            float_data = layer.values.dtype.kind == "f"
            rasterio.shutil.copy(
                src, path, driver="COG", COMPRESS="DEFLATE",
                PREDICTOR="FLOATING_POINT" if float_data else "STANDARD", BLOCKSIZE=256,
                OVERVIEWS="AUTO", OVERVIEW_RESAMPLING="NEAREST", RESAMPLING="NEAREST")
    return path
