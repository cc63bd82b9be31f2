"""The forecast pipeline after the simulation: fields -> damage -> published products.

The CLI (``tsunami run`` and ``tsunami export``) and the Python API share this step: the
town fields of a run are turned into GIS layers, extents, maps and a STAC item, and, for
every town with ``[[exposure]]`` in the region, the building-damage and casualty planning
estimates, all published atomically into ``OUTBOX/<event>/forecast-NNN/``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import xarray as xr
from pyproj import CRS

from tsunami.products import publish_run
from tsunami.products.layers import default_output_crs
from tsunami.products.stac import ForecastInfo
from tsunami.region import ExposureSpec, Region


def damage_writer(spec: ExposureSpec, town: xr.Dataset, crs: CRS | None,
                  timezone: str | None = None):
    """A publication writer assessing damage in one town: called with the staging folder
    and the forecast's :class:`ForecastInfo`, whose identity every damage file carries
    (its wall time is the ``damage_<town>`` stage of the forecast). ``timezone``: the
    region's IANA time zone (None: the default of :mod:`tsunami.localtime`)."""
    from tsunami.damage import (
        DamageParameters,
        assess,
        load_buildings,
        load_districts,
        load_population,
    )

    if crs is None:
        lon = float(town["lon"].mean()) if "lon" in town.coords else None
        lat = float(town["lat"].mean()) if "lat" in town.coords else None
        crs = default_output_crs(lon, lat) if lon is not None else None

    def write(folder: Path, info: ForecastInfo):
        buildings = load_buildings(spec.buildings, structure_field=spec.structure_field,
                                   storeys_field=spec.storeys_field)
        population = load_population(spec.population) if spec.population else None
        districts = load_districts(spec.districts) if spec.districts else None
        options = {"fragility": str(spec.fragility) if spec.fragility else None,
                   "fragility_source": spec.fragility_source,
                   "partition_size": spec.partition_size}
        params = DamageParameters(output_crs=crs.to_string() if crs else None,
                                  timezone=timezone,
                                  **{k: v for k, v in options.items() if v is not None})
        result = assess(town, buildings, population=population, districts=districts,
                        params=params)
        return result.write(folder, spec.town, info.tags())

    write.stage = f"damage_{spec.town}"
    return write


def publish_forecast(region: Region, towns: dict[str, xr.Dataset], outbox: str | Path, *,
                     event_id: str, scenario: str, origin_time: datetime | None,
                     source_type: str, timings_s: dict[str, float],
                     forecast_number: int | None = None, crs: CRS | None = None,
                     resolution: float | None = None, copies: list[Path] = (),
                     description: str = "", properties: dict | None = None,
                     headline: str = "", input_warnings: list[str] = ()) -> Path:
    """Publish the layers, extents, maps, damage estimates and STAC item of a forecast
    (times on the maps in the region's time zone too); ``description`` and
    ``properties`` go into the STAC item, ``headline`` onto the quick-look maps.

    ``input_warnings``: the run's input warnings (``RunResult.input_warnings``, run.json's
    ``input_warnings``; a town at sea shows no flooding). They travel with the products,
    which a GIS team or an HQ reads without the run's log: listed in the item
    (``tsunami:input_warnings``), counted in its description and on the quick-look maps."""
    if input_warnings:
        count = f"{len(input_warnings)} input warning{'s' if len(input_warnings) > 1 else ''}"
        properties = {**(properties or {}),
                      "tsunami:input_warnings": [_published(w) for w in input_warnings]}
        description = (f"{description or f'{scenario} on {region.name}'}. INPUT WARNINGS: "
                       f"{count}, listed in tsunami:input_warnings; check them before "
                       "relying on these maps")
        headline = "; ".join(filter(None, [headline, f"{count.upper()}: see the STAC item"]))
    crs = crs or region.output_crs
    if region.timezone:
        towns = {name: ds.assign_attrs(timezone=region.timezone) for name, ds in towns.items()}
    writers = [damage_writer(spec, towns[spec.town], crs, region.timezone)
               for spec in region.exposures if spec.town in towns]
    return publish_run(towns, outbox, event_id=event_id, region=region.name,
                       scenario=scenario, origin_time=origin_time, source_type=source_type,
                       timings_s=timings_s, forecast_number=forecast_number, crs=crs,
                       resolution=resolution, copies=copies, writers=writers,
                       description=description, properties=properties, headline=headline)


def _published(warning: str) -> str:
    """An input warning as published: its file by name, without this machine's folders
    (published files name their inputs but carry no local paths)."""
    source, sep, rest = warning.partition(", field '")
    return f"{Path(source).name}{sep}{rest}" if sep and Path(source).is_absolute() else warning
