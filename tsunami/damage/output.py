"""Writing a :class:`~tsunami.damage.assess.DamageResult`: GeoPackage, GeoTIFFs, JSON, CSV,
PNG. Every file goes through :func:`tsunami.atomic.atomic_path` (temporary name, then
rename), so a system polling the folder never sees a half-written product.

Files (``<name>`` = the town name unless given; ``<c>`` = cell size in m; ``<k>`` = the
severe damage state):

=====================================  ==============================================
``<name>_buildings_damage.gpkg``       layer ``buildings``: one feature per building,
                                       input CRS (or ``buildings_crs``); the columns of
                                       :data:`BUILDING_FIELDS`
                                       (names of at most 10 characters: a Shapefile export
                                       keeps them) and the forecast's identity
``<name>_buildings_<c>m.tif``          buildings per cell
``<name>_ds<k>plus_expected_<c>m.tif`` expected buildings at DS >= k per cell
``<name>_ds<k>plus_range_<c>m.tif``    band 1: 5th, band 2: 95th percentile of the same
``<name>_washed_away_expected_<c>m.tif`` expected buildings washed away (DS6) per cell
``<name>_washed_away_range_<c>m.tif``  band 1: 5th, band 2: 95th percentile
``<name>_damage_summary.json``         town and district summaries, assumptions, params
``<name>_damage_summary.csv``          one row per area (town, then districts)
``<name>_damage_map.png``              buildings by expected state over the depth field,
                                       in the output CRS (``output_crs``)
``<name>_damage_chart.png``            buildings per state (and people per depth class)
=====================================  ==============================================

GeoTIFFs: Cloud-Optimized (:mod:`tsunami.cog`, overviews by sum: a zoomed-out cell holds
the buildings of the cells it covers), float32, no-data NaN (cells off the forecast
field), 0 = no buildings / none damaged, 256 x 256 tiles, DEFLATE with the floating-point
predictor, CRS and transform embedded, units and assumptions in the GDAL metadata.

Every file names the forecast it belongs to when ``forecast`` (``event_id``,
``forecast_number``, ``issue_time``, ...) is given: GeoPackage layer metadata and
``event_id``/``forecast``/``issued`` columns, GeoTIFF tags, the summary's ``forecast_id``
and CSV columns, and the titles of the map and chart. No file holds a local path.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np

from tsunami.assets import COG, GEOPACKAGE, Asset
from tsunami.atomic import atomic_path
from tsunami.cog import write_cog
from tsunami.damage.plots import bar_chart, quicklook_map

#: Columns of the per-building table (``DamageResult.buildings`` and the GeoPackage):
#: names of at most 10 characters, so that a Shapefile export keeps them whole.
BUILDING_FIELDS = {
    "bldg_id": "building identifier (the input's id, else the row number)",
    "structure": "structure type (wood, rc, steel, masonry)",
    "storeys": "number of storeys",
    "count": "buildings the row stands for",
    "defaulted": "attributes that were missing and took the default",
    "curve": "fragility curve set used",
    "depth_m": "maximum inundation depth at the building (m; weighted mean of a sweep)",
    "speed_m_s": "maximum flow speed (m/s)",
    "mflux_m3s2": "maximum momentum flux, depth x speed squared (m3/s2)",
    "arrive_min": "tsunami arrival, minutes after the origin time",
    "dep_min_m": "lowest maximum depth over the scenarios of a sweep (m)",
    "dep_max_m": "highest maximum depth over the scenarios of a sweep (m)",
    **{f"p_ds{k}": f"probability of damage state {k} exactly" for k in range(7)},
    "p_ds<k>plus": "probability of the severe damage state k or worse",
    "exp_ds": "expected damage state (sum of k x P(DS = k))",
    "likely_ds": "most likely damage state (-1: not assessed)",
    "status": "assessed, on_sea_cell (left out) or outside",
    "district": "district the building lies in",
    "event_id": "event of the forecast",
    "forecast": "forecast number",
    "issued": "issue time of the forecast (UTC, ISO 8601)",
}
IDENTITY = ("event_id", "forecast_number", "issue_time", "origin_time")
#: identity columns of the per-building table and the CSV (at most 10 characters)
IDENTITY_COLUMNS = {"event_id": "event_id", "forecast_number": "forecast",
                    "issue_time": "issued"}


def write_result(result, folder: Path, name: str, forecast: dict[str, str]) -> list[Asset]:
    """Write every product of ``result`` into ``folder`` (created if needed); every file
    carries ``forecast``, the forecast's identity."""
    folder.mkdir(parents=True, exist_ok=True)
    assets: list[Asset] = []
    identity = {k: str(forecast[k]) for k in IDENTITY if forecast.get(k) not in (None, "")}
    summary = dict(result.summary, forecast_id=identity, building_fields=BUILDING_FIELDS)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.timings[f"write_{stage}_s"] = now - clock
        clock = now

    if result.buildings is not None:
        path = folder / f"{name}_buildings_damage.gpkg"
        table = result.buildings.assign(**{column: identity.get(key, "")
                                           for key, column in IDENTITY_COLUMNS.items()})
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # GDAL warns that the temporary name does not end in .gpkg; it is renamed after
            warnings.filterwarnings("ignore", message=".*extension should be.*")
            table.to_file(
                tmp, driver="GPKG", layer="buildings", engine="pyogrio",
                layer_metadata=dict(identity, town=result.name, planning_estimate="yes"),
                # GeoPackage 1.3: GDAL 3.6 (QGIS 3.22) warns that it only partly reads 1.4
                dataset_options={"VERSION": "1.3"},
                layer_options={"DESCRIPTION": f"{name}: damage-state probabilities per "
                               "building (Suppasri et al. 2013 curves unless stated in the "
                               "summary JSON); PLANNING ESTIMATE"
                               + (f"; {identity['event_id']} forecast "
                                  f"{identity.get('forecast_number', '?')}, issued "
                                  f"{identity.get('issue_time', '?')}" if identity else "")})
        assets.append(Asset(path, f"{name}: buildings with damage-state probabilities",
                            ["data"], GEOPACKAGE))
        lap("geopackage")
    if result.grid is not None and result.grid.layers:
        assets += _write_rasters(result, folder, name, identity)
        lap("geotiff")
    path = folder / f"{name}_damage_summary.json"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(summary), f, indent=2, ensure_ascii=False)
    assets.append(Asset(path, f"{name}: damage and casualty summary with assumptions",
                        ["metadata"], "application/json"))
    path = folder / f"{name}_damage_summary.csv"
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        _write_csv(summary, f, identity)
    assets.append(Asset(path, f"{name}: damage and casualty summary per area", ["data"],
                        "text/csv"))
    lap("summary")
    path = folder / f"{name}_damage_map.png"
    with atomic_path(path) as tmp:
        quicklook_map(result, tmp, result.grid.crs, identity)
    assets.append(Asset(path, f"{name}: buildings by expected damage state over inundation "
                        "depth", ["overview"], "image/png"))
    lap("map")
    path = folder / f"{name}_damage_chart.png"
    with atomic_path(path) as tmp:
        bar_chart(result, tmp, identity)
    assets.append(Asset(path, f"{name}: buildings per damage state (5-95 % range)",
                        ["overview"], "image/png"))
    lap("chart")
    return assets


def _write_rasters(result, folder: Path, name: str, identity: dict[str, str]) -> list[Asset]:
    grid = result.grid
    ks = result.params.severe_state
    size = f"{grid.size:g}m"
    files = [
        (f"{name}_buildings_{size}.tif", ["buildings"], "buildings per cell"),
        (f"{name}_ds{ks}plus_expected_{size}.tif", [f"ds{ks}plus_expected"],
         f"expected buildings at DS{ks} or worse per cell"),
        (f"{name}_ds{ks}plus_range_{size}.tif", [f"ds{ks}plus_p05", f"ds{ks}plus_p95"],
         f"5-95 % range of buildings at DS{ks} or worse per cell"),
        (f"{name}_washed_away_expected_{size}.tif", ["washed_away_expected"],
         "expected buildings washed away (DS6) per cell"),
        (f"{name}_washed_away_range_{size}.tif", ["washed_away_p05", "washed_away_p95"],
         "5-95 % range of buildings washed away (DS6) per cell"),
    ]
    tags = {
        "town": result.name,
        "units": "buildings per cell",
        "nodata_meaning": "NaN: cell off the forecast field; 0: no buildings or none damaged",
        "cell_size_m": f"{grid.size:g}",
        "crs": grid.crs.to_string(),
        "software": result.summary.get("software", ""),
        "scenario": ";".join(str(f.get("scenario", "")) for f in result.summary["forecast"]),
        "planning_estimate": "expected counts from fragility curves; see the summary JSON "
                             "for every assumption",
        "fragility": "; ".join(result.summary.get("fragility", {}).get("curves_used", {})),
        **identity,
    }
    assets = []
    for filename, layers, title in files:
        path = folder / filename
        arrays = [grid.layers[layer] for layer in layers]
        with atomic_path(path) as tmp:
            write_cog(tmp, [arr.astype(np.float32) for arr, _, _ in arrays],
                      transform=grid.transform, crs=grid.crs, nodata=float("nan"),
                      overview="sum", tags=dict(tags, title=title),
                      descriptions=[desc for _, desc, _ in arrays],
                      units=[units for _, _, units in arrays],
                      band_tags=[{"units": units, "layer": layer}
                                 for (_, _, units), layer in zip(arrays, layers, strict=True)])
        assets.append(Asset(path, f"{result.name}: {title}", ["data"], COG))
    return assets


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def summary_rows(summary: dict, identity: dict[str, str] | None = None) -> list[dict]:
    """One flat row per area (town first, then districts) for the CSV, each starting
    with the forecast's identity."""
    areas = [("town", summary["town"], summary.get("town_summary", {}))]
    areas += [("district", k, v) for k, v in summary.get("districts", {}).items()]
    first = {column: (identity or {}).get(key, "") for key, column in IDENTITY_COLUMNS.items()}
    rows = []
    for kind, label, area in areas:
        row: dict = dict(first, area_type=kind, area=label)
        b = area.get("buildings")
        if b:
            row["buildings_total"] = b["total"]
            row["buildings_assessed"] = b["assessed"]
            for state, v in b["by_state"].items():
                key = state.split()[0].lower()
                for stat in ("expected", "p05", "p95"):
                    row[f"{key}_{stat}"] = v[stat]
            for state, v in b["at_least"].items():
                key = state.lower().replace("+", "plus")
                for stat in ("expected", "p05", "p95"):
                    row[f"{key}_{stat}"] = v[stat]
        p = area.get("people")
        if p:
            row["people_in_field"] = p["in_field"]
            row["people_inundated"] = p["inundated"]
            keys = summary.get("population", {}).get("depth_class_keys")
            for i, (label_, v) in enumerate(p["by_depth_class"].items()):
                key = keys[i] if keys else label_.replace(" ", "")
                row[f"people_{key}"] = v["expected"]
            row["people_caught"] = p["caught"]
            for stat in ("expected", "low", "high"):
                row[f"casualties_{stat}"] = p["casualties"][stat]
        rows.append(row)
    return rows


def _write_csv(summary: dict, f, identity: dict[str, str]) -> None:
    rows = summary_rows(summary, identity)
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
