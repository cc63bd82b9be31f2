"""Building damage and casualty estimates from an inundation forecast: PLANNING ESTIMATES.

Data flow: a town field (``town_<name>.nc`` of ``tsunami run``; or several for a scenario
sweep) + exposure (buildings, census population, districts) -> :func:`assess` ->
:class:`DamageResult` (``.buildings`` GeoDataFrame, ``.summary`` dict, ``.write()``)::

    from tsunami.damage import (DamageParameters, assess, load_buildings,
                                load_districts, load_population)

    result = assess("out/town_Aonae.nc",
                    load_buildings("grids/okushiri1993/exposure/aonae_buildings.gpkg"),
                    population=load_population(".../aonae_population_250m.csv"),
                    params=DamageParameters(output_crs="EPSG:6680"))
    assets = result.write("out/damage", "Aonae",   # [Asset(path, title, roles, media_type)]
                          forecast={"event_id": "okushiri1993", "forecast_number": "1",
                                    "issue_time": "1993-07-12T13:22:00Z"})

- Fragility: lognormal curves read from ``data/fragility.csv`` (Suppasri et al. 2013, by
  material and by storeys; see ``data/SOURCE.md``), nested by cumulative clipping.
- Per building: depth (and speed, momentum flux or force if a curve needs them) at its cell, or the
  worst over its footprint's cells; P(DS = k) for k = 0..6 and the expected state.
- Aggregates: expected buildings per state (sums of probabilities) per town, district and
  ``cell_size_m`` cell, with 5-95 % ranges from a Monte Carlo of independent building
  outcomes (and of the scenarios of a sweep).
- Large inventories: split into spatial partitions (``partition_size`` buildings) that
  run as Dask tasks, on threads or on an active ``dask.distributed`` cluster, with
  results identical to the serial path.
- People: census population (JIS X 0410 mesh CSV, raster, or polygons) spread over the
  buildings or the land of each census cell; people per MLIT depth class; casualties by
  the Cabinet Office 2012 method (night or day from the origin time in local time) or the
  pre-2012 CDMC formula, every assumption a parameter (:class:`CasualtyParameters`) and
  listed in the outputs.
"""

from tsunami.assets import Asset
from tsunami.damage.assess import CellGrid, DamageParameters, DamageResult, assess
from tsunami.damage.casualty import CasualtyParameters, EvacuationGroup
from tsunami.damage.exposure import (
    DEFAULTS,
    ExposureDefaults,
    Population,
    load_buildings,
    load_districts,
    load_population,
)
from tsunami.damage.field import TownField
from tsunami.damage.fragility import FragilityTable, load_fragility
from tsunami.damage.meshcode import decode as decode_mesh_codes
from tsunami.damage.meshcode import encode as encode_mesh_codes

__all__ = [
    "DEFAULTS",
    "Asset",
    "CasualtyParameters",
    "CellGrid",
    "DamageParameters",
    "DamageResult",
    "EvacuationGroup",
    "ExposureDefaults",
    "FragilityTable",
    "Population",
    "TownField",
    "assess",
    "decode_mesh_codes",
    "encode_mesh_codes",
    "load_buildings",
    "load_districts",
    "load_fragility",
    "load_population",
]
