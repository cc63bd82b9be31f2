"""Publishing a forecast's products into an outbox, atomically and safely under concurrency.

Layout::

    OUTBOX/<event>/forecast-001/      one folder per forecast, never changed once there
    OUTBOX/<event>/latest -> forecast-NNN   (symbolic link to the newest complete one)
    OUTBOX/<event>/collection.json    STAC Collection linking every forecast's item.json
    OUTBOX/<event>/.reservations/N.lease   forecast numbers held by live publishers
    OUTBOX/<event>/.incoming-forecast-NNN-<id>/   a forecast being built
    OUTBOX/<event>/.lock              serialises switching ``latest`` and the collection

The protocol (README, "Publishing safely"), safe for several publishers at once, in other
containers or on other hosts sharing the outbox (NFS):

1. A number is reserved by creating ``.reservations/N.lease`` exclusively (``O_EXCL``,
   atomic on local and NFS file systems): the next number is one above every number
   reserved or published, and whoever creates the file first holds it; the others try
   the next one. An explicit number already published is refused, never overwritten.
2. The forecast is built in ``.incoming-forecast-NNN-<id>/``; every file is flushed to
   disk, then the folder is renamed to ``forecast-NNN`` in one step.
3. Under ``.lock``, ``latest`` is moved to the highest complete forecast if that is higher
   than where it points (never backwards), and ``collection.json`` is rebuilt from the
   items on disk and replaced atomically.

Reservation and staging leases are refreshed by a heartbeat (:mod:`tsunami.lease`); what a
killed publisher left is removed by the next publish once provably abandoned: its process
gone (same host and PID namespace) or its lease not refreshed for
:data:`tsunami.lease.STALE_AFTER_S`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import xarray as xr
from pyproj import CRS, Transformer
from rasterio.warp import Resampling

from tsunami.atomic import (
    StagingFolder,
    age,
    atomic_path,
    remove_stale_staging,
    remove_stale_temporaries,
    sync_dir,
)
from tsunami.errors import InputError
from tsunami.lease import STALE_AFTER_S, Lease, read_owner, stale, storage_now
from tsunami.localtime import format_time, resolve_timezone
from tsunami.names import check_name
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

RESERVATIONS = ".reservations"
STAGING = ".incoming-"
_FORECAST = re.compile(r"forecast-(\d{3,})")
_held: dict[tuple[str, int], Lease] = {}  # forecast numbers this process has reserved


def forecast_folder(number: int) -> str:
    """``forecast-001`` ... ``forecast-999``, ``forecast-1000`` ...: three digits at least,
    so that names from before 1000 stay valid; order forecasts by number, not by name."""
    return f"forecast-{number:03d}"


def forecast_number(name: str) -> int | None:
    """The number of a forecast folder's name; None for any other name."""
    match = _FORECAST.fullmatch(name)
    if match and forecast_folder(int(match[1])) == name:
        return int(match[1])
    return None


def _forecast_folders(event_dir: Path) -> dict[int, Path]:
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(event_dir):
            number = forecast_number(entry.name)
            if number is not None:
                found[number] = Path(entry.path)
    return dict(sorted(found.items()))


def published_forecasts(event_dir: Path) -> dict[int, Path]:
    """Every complete forecast of an event, by number in increasing order."""
    return {n: path for n, path in _forecast_folders(Path(event_dir)).items()
            if (path / "item.json").is_file()}


def latest_forecast(event_dir: Path) -> Path | None:
    """The forecast folder ``latest`` points at: always a complete forecast, the highest
    published when no publication is under way; None before the first."""
    number = _latest_number(Path(event_dir))
    return None if number is None else Path(event_dir) / forecast_folder(number)


def _latest_number(event_dir: Path) -> int | None:
    try:
        number = forecast_number(os.readlink(event_dir / "latest"))
    except OSError:
        return None
    if number is None or not (event_dir / forecast_folder(number) / "item.json").is_file():
        return None
    return number


def reserve_forecast_number(event_dir: Path, number: int | None = None) -> int:
    """Reserve a forecast number of the event for this process and return it: ``number``,
    or the next one (above every number reserved or published, so never one published).

    The reservation is kept alive by a heartbeat until the forecast is published with it
    (:func:`publish`) or :func:`release_forecast_number`. Raises FileExistsError when
    ``number`` is already published or held by a live publisher; a number held by a dead
    one (killed) is taken over.
    """
    event_dir = Path(event_dir)
    check_name(event_dir.name, None, "event_id")
    folder = event_dir / RESERVATIONS
    folder.mkdir(parents=True, exist_ok=True)
    if number is not None:
        _claim(event_dir, number)
        return number
    # Reservations are listed before the folders: a forecast's folder appears before its
    # reservation is removed, so a number is always seen in one of the two lists.
    reserved = [int(p.stem) for p in folder.glob("*.lease") if p.stem.isdigit()]
    number = max([*reserved, *_forecast_folders(event_dir)], default=0) + 1
    while True:
        try:
            lease = Lease.acquire(folder / f"{number}.lease")
        except FileExistsError:  # another publisher was quicker: try the next number
            number += 1
            continue
        if forecast_folder(number) not in os.listdir(event_dir):
            _held[_key(event_dir, number)] = lease
            return number
        lease.release()  # a folder without reservation (an older version published it)
        number += 1


def release_forecast_number(event_dir: Path, number: int) -> None:
    """Give up a reservation of this process (a number never published may be reused)."""
    lease = _held.pop(_key(Path(event_dir), number), None)
    if lease is not None:
        lease.release()


def _key(event_dir: Path, number: int) -> tuple[str, int]:
    return str(event_dir.resolve()), number


def _claim(event_dir: Path, number: int) -> Lease:
    """Hold ``number`` for this process: already ours, free, or abandoned by a dead one."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InputError(None, "forecast_number", f"must be a whole number from 1, got "
                         f"{number!r}")
    lease = _held.get(_key(event_dir, number))
    if lease is not None and lease.held():
        return lease
    folder = event_dir / forecast_folder(number)
    already = FileExistsError(f"{folder} is already published; forecasts are never "
                              "overwritten (give a new forecast number, or none for the next)")
    if os.path.lexists(folder):
        raise already
    path = event_dir / RESERVATIONS / f"{number}.lease"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lease = Lease.acquire(path)
    except FileExistsError:
        if not stale(path, storage_now(event_dir)):
            owner = read_owner(path)
            raise FileExistsError(
                f"forecast {number} of {event_dir.name} is being published by "
                f"{owner or 'another process'} (its reservation {path} is alive); give "
                "another forecast number, or none for the next") from None
        lease = Lease.acquire(path, take_over=True)
    if os.path.lexists(folder):  # published while we looked
        lease.release()
        raise already
    _held[_key(event_dir, number)] = lease
    return lease


def remove_stale(event_dir: Path) -> list[Path]:
    """Remove what killed publishers left in an event folder: staging folders whose lease
    is stale, and temporary files and ``.latest-*`` links not touched for
    :data:`~tsunami.lease.STALE_AFTER_S`. Never anything a live publisher uses."""
    event_dir = Path(event_dir)
    now = storage_now(event_dir)
    removed = remove_stale_staging(event_dir, f"{STAGING}*", now)
    for folder in (event_dir, event_dir / RESERVATIONS):
        removed += remove_stale_temporaries(folder, now)
    for link in event_dir.glob(".latest-*"):
        with contextlib.suppress(FileNotFoundError):
            if age(link, now) > STALE_AFTER_S:
                link.unlink()
                removed.append(link)
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
    if info.headline:
        title += f"\n{info.headline}"
    # Where the town's finest grid ends (coarser cells beyond): drawn on the map.
    sources = ds.attrs.get("source_grids", "").split()
    finest = None
    if len(sources) > 1 and "source_grid" in ds:
        source = reproject_field(ds, "source_grid", grid, Resampling.nearest)
        finest = (source == len(sources) - 1, sources[-1])
    png = depth_map(folder / f"{name}_quicklook.png", elevation, by_name, title, finest=finest)
    assets.append(Asset(png, f"{name}: quick-look map", ["overview", "visual"]))
    return assets, (min(lon), min(lat), max(lon), max(lat))


def publish(towns: dict[str, xr.Dataset], outbox: Path, info: ForecastInfo, *,
            crs: CRS | None = None, resolution: float | None = None,
            copies: list[Asset] = (), writers: list[Writer] = ()) -> Path:
    """Build every product into a staging folder and move it into the outbox.

    ``info.forecast_number`` is one this process reserved (:func:`reserve_forecast_number`)
    or one free: FileExistsError if it is published or being published by another live
    process. The reservation ends when this returns or raises. ``copies`` are existing
    files (fields, gauges) copied alongside; ``writers`` write further products (damage)
    into the staging folder, called with it and ``info`` (so that their files name the
    forecast), and return their assets; the wall time of each is recorded
    under its ``stage`` attribute. Returns the published forecast folder.
    """
    if not towns:
        raise ValueError("nothing to publish: the region defines no [[town]]")
    check_name(info.event_id, None, "event_id")
    start = time.perf_counter()
    event_dir = Path(outbox) / info.event_id
    event_dir.mkdir(parents=True, exist_ok=True)
    lease = _claim(event_dir, info.forecast_number)
    try:
        remove_stale(event_dir)
        final = event_dir / forecast_folder(info.forecast_number)
        with StagingFolder(event_dir, f"{STAGING}{final.name}-") as staging:
            folder = staging.path
            assets, footprints = [], []
            for name, ds in towns.items():
                town_assets, footprint = town_products(name, ds, folder, info, crs, resolution)
                assets += town_assets
                footprints.append(footprint)
            for asset in copies:
                target = folder / asset.path.name
                shutil.copyfile(asset.path, target)
                assets.append(Asset(target, asset.title, asset.roles, asset.media_type))
            for writer in writers:
                begun = time.perf_counter()
                assets += writer(folder, info)
                info.timings_s[getattr(writer, "stage", "writer")] = (time.perf_counter()
                                                                      - begun)
            info.timings_s["export"] = time.perf_counter() - start
            item = forecast_item(info, assets, footprints)
            validate_item(item)
            write_json(item, folder / "item.json")
            if not lease.held():
                raise FileExistsError(
                    f"the reservation of forecast {info.forecast_number} was taken over by "
                    f"another publisher (its heartbeat stopped for {STALE_AFTER_S:.0f} s); "
                    "nothing was published")
            staging.commit(final)
    finally:
        release_forecast_number(event_dir, info.forecast_number)
    _update_latest_and_collection(event_dir)
    return final


@contextlib.contextmanager
def _locked(event_dir: Path) -> Iterator[None]:
    """Exclusive lock of the event folder (flock: also across NFS clients where the
    mount supports locking)."""
    fd = os.open(event_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update_latest_and_collection(event_dir: Path) -> None:
    """Point ``latest`` at the highest complete forecast, never backwards, and rebuild
    ``collection.json`` from every item on disk."""
    with _locked(event_dir):
        forecasts: dict[int, Path] = {}
        for _ in range(10):
            # Redone while forecasts appear meanwhile: a no-op under a working lock, but
            # where locks do not reach other hosts it still ends with every item listed.
            current = published_forecasts(event_dir)
            if current.keys() == forecasts.keys():
                break
            forecasts = current
            _point_latest(event_dir, max(forecasts))
            items = [json.loads((p / "item.json").read_text()) for p in forecasts.values()]
            collection = event_collection(event_dir.name, items,
                                          f"Tsunami inundation forecasts for {event_dir.name}")
            with atomic_path(event_dir / "collection.json") as tmp:
                write_json(collection, tmp)
        sync_dir(event_dir)


def _point_latest(event_dir: Path, number: int) -> None:
    current = _latest_number(event_dir)
    if current is not None and current >= number:
        return  # latest never moves back (a republished older number leaves it)
    link = event_dir / f".latest-{uuid.uuid4().hex[:12]}"
    link.symlink_to(forecast_folder(number))
    try:
        os.replace(link, event_dir / "latest")
    except OSError:
        link.unlink(missing_ok=True)
        raise
