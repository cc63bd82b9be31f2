"""Publishing a forecast's products into an outbox, atomically.

Layout::

    OUTBOX/<event>/forecast-001/      one folder per forecast, never changed once there
    OUTBOX/<event>/latest -> forecast-NNN   (symbolic link to the newest complete one)
    OUTBOX/<event>/collection.json    STAC Collection linking every forecast's item.json

Everything of a forecast is written into a hidden staging folder beside it
(``.incoming-forecast-NNN-<pid>``) and renamed into place only when complete; ``latest``
is then switched with an atomic replace. A failing or killed export therefore never
leaves a half-written forecast folder and never moves ``latest`` away from the previous
good forecast; stale staging folders of dead processes are removed by the next publish.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import xarray as xr
from pyproj import CRS, Transformer
from rasterio.warp import Resampling

from tsunami.atomic import atomic_path
from tsunami.localtime import format_time, resolve_timezone
from tsunami.products.kml import write_kmz
from tsunami.products.layers import Layer, reproject_field, town_layers, write_cog
from tsunami.products.quicklook import depth_map
from tsunami.products.stac import (
    Asset,
    ForecastInfo,
    classification_classes,
    event_collection,
    forecast_item,
    validate_item,
    write_json,
)
from tsunami.products.styles import class_style, depth_style
from tsunami.products.vectors import extent_features, write_geojson

Writer = Callable[[Path, ForecastInfo], list[Asset]]


def forecast_folder(number: int) -> str:
    return f"forecast-{number:03d}"


def next_forecast_number(event_dir: Path) -> int:
    numbers = [int(p.name.split("-")[1]) for p in event_dir.glob("forecast-[0-9][0-9][0-9]")]
    return max(numbers, default=0) + 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(event_dir: Path) -> list[Path]:
    """Delete staging folders left by processes that died mid-export."""
    removed = []
    for path in event_dir.glob(".incoming-*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def town_products(name: str, ds: xr.Dataset, folder: Path, info: ForecastInfo,
                  crs: CRS | None, resolution: float | None) -> tuple[list[Asset], tuple]:
    """Write one town's layers, styles, extent polygons (GeoJSON, KMZ) and map into
    ``folder``; every file names the event and forecast."""
    layers, grid = town_layers(ds, crs, resolution, dict(info.tags(), town=name))
    epsg = grid.crs.to_epsg() or "custom"
    assets = []
    by_name: dict[str, Layer] = {}
    for layer in layers:
        path = write_cog(layer, folder / f"{name}_{layer.name}_{epsg}.tif")
        assets.append(Asset(path, f"{name}: {layer.title} ({layer.unit})", ["data"],
                            classes=classification_classes(layer.categories, layer.colormap)))
        if layer.categories:
            assets.append(Asset(path.with_name(path.name + ".aux.xml"),
                                f"{name}: names and attribute table of the depth classes "
                                "(GDAL PAM sidecar)", ["metadata"]))
        by_name[layer.name] = layer
    for layer_name, write_style in (("max_depth", depth_style), ("depth_class", class_style)):
        style = write_style(folder / f"{name}_{layer_name}_{epsg}.qml")
        assets.append(Asset(style, f"{name}: QGIS style of the {layer_name} layer (loaded "
                            "with it)", ["metadata"]))
    west, south, east, north = by_name["depth_class"].bounds
    lon, lat = Transformer.from_crs(grid.crs, 4326, always_xy=True).transform(
        [west, east, east, west], [south, south, north, north])
    tz = resolve_timezone(ds.attrs.get("timezone"), sum(lon) / 4, sum(lat) / 4)
    identity = (f"{info.event_id}: forecast {info.forecast_number}, issued "
                f"{format_time(info.issue_time, tz)}")
    features = extent_features(by_name["depth_class"],
                               dict(info.tags(), forecast_number=info.forecast_number))
    extent = write_geojson(features, folder / f"{name}_inundation_extent.geojson")
    assets.append(Asset(extent, f"{name}: inundation extent by depth class (EPSG:4326)",
                        ["data"]))
    kmz = write_kmz(features, folder / f"{name}_inundation_extent.kmz",
                    f"{identity}: {name}, inundation extent")
    assets.append(Asset(kmz, f"{name}: inundation extent by depth class for Google Earth "
                        "(KMZ)", ["data"]))
    elevation = reproject_field(ds, "elevation", grid, Resampling.bilinear)
    title = (f"{identity}\norigin {format_time(info.origin_time, tz)}; {name}: maximum "
             "inundation depth and arrival time")
    png = depth_map(folder / f"{name}_quicklook.png", name, elevation, by_name, title)
    assets.append(Asset(png, f"{name}: quick-look map", ["overview", "visual"]))
    return assets, (min(lon), min(lat), max(lon), max(lat))


def publish(towns: dict[str, xr.Dataset], outbox: Path, info: ForecastInfo, *,
            crs: CRS | None = None, resolution: float | None = None,
            copies: list[Asset] = (), writers: list[Writer] = ()) -> Path:
    """Build every product into a staging folder and move it into the outbox.

    ``copies`` are existing files (fields, gauges) copied alongside; ``writers`` write
    further products (damage) into the staging folder, called with it and ``info`` (so
    that their files name the forecast), and return their assets; the wall
    time of each is recorded under its ``stage`` attribute. Returns the published
    forecast folder.
    """
    if not towns:
        raise ValueError("nothing to publish: the region defines no [[town]]")
    start = time.perf_counter()
    event_dir = Path(outbox) / info.event_id
    event_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(event_dir)
    final = event_dir / forecast_folder(info.forecast_number)
    if final.exists():
        raise FileExistsError(f"{final} is already published; forecasts are never "
                              "overwritten (give a new forecast number)")
    staging = event_dir / f".incoming-{final.name}-{os.getpid()}"
    staging.mkdir()
    try:
        assets, footprints = [], []
        for name, ds in towns.items():
            town_assets, footprint = town_products(name, ds, staging, info, crs, resolution)
            assets += town_assets
            footprints.append(footprint)
        for asset in copies:
            target = staging / asset.path.name
            shutil.copyfile(asset.path, target)
            assets.append(Asset(target, asset.title, asset.roles, asset.media_type))
        for writer in writers:
            begun = time.perf_counter()
            assets += writer(staging, info)
            info.timings_s[getattr(writer, "stage", "writer")] = time.perf_counter() - begun
        info.timings_s["export"] = time.perf_counter() - start
        item = forecast_item(info, assets, footprints)
        validate_item(item)
        write_json(item, staging / "item.json")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    link = event_dir / f".latest-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(final.name)
    os.replace(link, event_dir / "latest")
    _update_collection(event_dir, info)
    return final


def _update_collection(event_dir: Path, info: ForecastInfo) -> None:
    items = [json.loads((p / "item.json").read_text())
             for p in sorted(event_dir.glob("forecast-[0-9][0-9][0-9]"))
             if (p / "item.json").exists()]
    collection = event_collection(info.event_id, items,
                                  f"Tsunami inundation forecasts for {info.event_id}")
    with atomic_path(event_dir / "collection.json") as tmp:
        write_json(collection, tmp)
