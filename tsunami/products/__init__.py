"""HQ- and GIS-ready products of a forecast, published atomically into an outbox.

:func:`publish_run` turns a run's town fields into Cloud-Optimized GeoTIFF layers (and a
classified depth layer with its colour table), inundation-extent GeoJSON, quick-look maps
and a STAC Item, and moves them into ``OUTBOX/<event>/forecast-NNN/``. It is called at
the end of ``tsunami run`` and by ``tsunami export RUN_DIR``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import xarray as xr
from pyproj import CRS

from tsunami import __version__
from tsunami.errors import InputError
from tsunami.names import check_name
from tsunami.products.outbox import (
    Writer,
    latest_forecast,
    publish,
    published_forecasts,
    release_forecast_number,
    reserve_forecast_number,
)
from tsunami.products.stac import Asset, ForecastInfo
from tsunami.runfolder import read_listing

__all__ = ["Asset", "ForecastInfo", "latest_forecast", "publish", "publish_run",
           "published_forecasts", "read_run", "release_forecast_number",
           "reserve_forecast_number"]


def read_run(run_dir: str | Path) -> tuple[dict[str, xr.Dataset], dict]:
    """The town fields and ``run.json`` summary of a ``tsunami run`` output folder.

    Only the files ``run.json`` lists are read, each checked against its recorded size and
    SHA-256 (:func:`tsunami.runfolder.read_listing`): a folder that is incomplete or was
    changed after its run is refused with InputError, never published. The summary's
    ``files`` are ``{"name", "bytes", "sha256"}`` records, all checked.
    """
    listing = read_listing(run_dir)
    towns = {p.stem.removeprefix("town_"): xr.load_dataset(p) for p in listing.files
             if p.name.startswith("town_") and p.suffix == ".nc"}
    if listing.replaced():
        raise InputError(listing.folder, None, "was replaced by another run while it was "
                         "read; export again")
    return towns, listing.summary


def publish_run(towns: dict[str, xr.Dataset], outbox: str | Path, *, event_id: str,
                region: str, scenario: str, origin_time: datetime | None, source_type: str,
                timings_s: dict[str, float], forecast_number: int | None = None,
                crs: CRS | None = None, resolution: float | None = None,
                copies: list[Path] = (), writers: list[Writer] = (),
                issue_time: datetime | None = None, description: str = "",
                properties: dict | None = None, headline: str = "") -> Path:
    """Publish a forecast's products; returns the published folder.

    ``forecast_number`` defaults to the next free number of the event (reserved
    atomically, so concurrent publishers never get the same one); ``crs`` to the
    JGD2011 zone containing each town; ``resolution`` (m) to the 1-2-5 step nearest the
    finest grid spacing. ``description`` and ``properties`` go into the STAC item,
    ``headline`` (one line) onto the quick-look maps too.
    """
    outbox = Path(outbox)
    event_dir = outbox / check_name(event_id, None, "event_id")
    number = reserve_forecast_number(event_dir, forecast_number)
    try:
        info = ForecastInfo(event_id, number, issue_time or datetime.now(UTC), origin_time,
                            __version__, source_type, region, scenario, dict(timings_s),
                            description, dict(properties or {}), headline)
        assets = [Asset(Path(p), _title(Path(p)), ["data"]) for p in copies]
        return publish(towns, outbox, info, crs=crs, resolution=resolution, copies=assets,
                       writers=writers)
    finally:
        release_forecast_number(event_dir, number)


def _title(path: Path) -> str:
    if path.name.startswith("town_"):
        return f"{path.stem.removeprefix('town_')}: all fields (NetCDF, model grid)"
    if path.name.startswith("gauges"):
        return f"gauge time series ({path.suffix.lstrip('.')})"
    return path.name
