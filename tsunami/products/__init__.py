"""HQ- and GIS-ready products of a forecast, published atomically into an outbox.

:func:`publish_run` turns a run's town fields into Cloud-Optimized GeoTIFF layers (and a
classified depth layer with its colour table), inundation-extent GeoJSON, quick-look maps
and a STAC Item, and moves them into ``OUTBOX/<event>/forecast-NNN/``. It is called at
the end of ``tsunami run`` and by ``tsunami export RUN_DIR``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import xarray as xr
from pyproj import CRS

from tsunami import __version__
from tsunami.products.outbox import Writer, next_forecast_number, publish
from tsunami.products.stac import Asset, ForecastInfo

__all__ = ["Asset", "ForecastInfo", "publish", "publish_run", "read_run"]


def read_run(run_dir: str | Path) -> tuple[dict[str, xr.Dataset], dict]:
    """The town fields and ``run.json`` summary of a ``tsunami run`` output folder."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "run.json"
    if not summary_path.exists():
        raise FileNotFoundError(f"{run_dir} holds no run.json: not a tsunami run folder")
    summary = json.loads(summary_path.read_text())
    towns = {p.stem.removeprefix("town_"): xr.load_dataset(p)
             for p in sorted(run_dir.glob("town_*.nc"))}
    return towns, summary


def publish_run(towns: dict[str, xr.Dataset], outbox: str | Path, *, event_id: str,
                region: str, scenario: str, origin_time: datetime | None, source_type: str,
                timings_s: dict[str, float], forecast_number: int | None = None,
                crs: CRS | None = None, resolution: float | None = None,
                copies: list[Path] = (), writers: list[Writer] = (),
                issue_time: datetime | None = None) -> Path:
    """Publish a forecast's products; returns the published folder.

    ``forecast_number`` defaults to the next free number of the event; ``crs`` to the
    JGD2011 zone containing each town; ``resolution`` (m) to the 1-2-5 step nearest the
    finest grid spacing.
    """
    outbox = Path(outbox)
    event_dir = outbox / event_id
    number = forecast_number or next_forecast_number(event_dir)
    info = ForecastInfo(event_id, number, issue_time or datetime.now(UTC), origin_time,
                        __version__, source_type, region, scenario, dict(timings_s))
    assets = [Asset(Path(p), _title(Path(p)), ["data"]) for p in copies]
    return publish(towns, outbox, info, crs=crs, resolution=resolution, copies=assets,
                   writers=writers)


def _title(path: Path) -> str:
    if path.name.startswith("town_"):
        return f"{path.stem.removeprefix('town_')}: all fields (NetCDF, model grid)"
    if path.name.startswith("gauges"):
        return f"gauge time series ({path.suffix.lstrip('.')})"
    return path.name
