"""Benchmark of the damage assessment: seconds per stage and peak memory.

``run(n_buildings=100_000)`` builds a synthetic 10 m forecast field (projected,
EPSG:6680; 20 x 20 km, 4 M cells: sea in the west, a coast flooded 0-15 m deep inland),
``n_buildings`` rectangular footprints on its land (a Japanese mix of wood, RC, steel and
masonry, 1-4 storeys), a 250 m census mesh CSV (JIS X 0410) and 16 districts; writes them
to a temporary folder, then times reading them, the assessment (sampling, fragility,
Monte Carlo ranges, people and casualties) and writing every product. Speed is measured
here, never asserted in tests.
"""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr

from tsunami.damage import meshcode

BENCH_CRS = "EPSG:6680"  # JGD2011 / Japan Plane Rectangular CS XII
ORIGIN = (-150_000.0, -200_000.0)  # south-west corner (m): about 42.2 N, 140.4 E


def synthetic_field(size: int = 2000, spacing: float = 10.0) -> xr.Dataset:
    """A town field like ``tsunami run`` writes, on a projected 10 m lattice."""
    x = ORIGIN[0] + (np.arange(size) + 0.5) * spacing
    y = ORIGIN[1] + (np.arange(size) + 0.5) * spacing
    # broadcasting float32 rows and columns keeps the set-up's memory small
    xx = ((x - ORIGIN[0]) / (size * spacing)).astype(np.float32)[None, :]
    yy = ((y - ORIGIN[1]) / (size * spacing)).astype(np.float32)[:, None]
    shore = 0.15 + 0.05 * np.sin(2 * np.pi * yy * 3)
    ground = np.where(xx > shore, 40.0 * (xx - shore) + 2.0 * np.sin(40 * yy) ** 2, -20.0)
    flood_level = 12.0 + 6.0 * np.cos(2 * np.pi * yy * 2)
    land = ground > 0
    depth = np.where(land, np.maximum(flood_level - ground, 0.0), np.nan)
    speed = np.where(land, np.sqrt(9.81 * np.nan_to_num(depth)) * 0.6, np.nan)
    arrival = np.where(land & (depth > 0.2), 600.0 + (xx - shore) * (size * spacing / 4.0),
                       np.nan)
    arrival = np.where(~land, 300.0, arrival)
    crs = pyproj.CRS.from_user_input(BENCH_CRS)
    dims = ("y", "x")
    ds = xr.Dataset(
        {"max_depth": (dims, depth.astype(np.float32), {"units": "m"}),
         "max_speed": (dims, speed.astype(np.float32), {"units": "m s-1"}),
         "max_momentum_flux": (dims, (np.nan_to_num(depth) * speed ** 2).astype(np.float32),
                               {"units": "m3 s-2"}),
         "arrival_time": (dims, arrival.astype(np.float32), {"units": "s"}),
         "max_eta": (dims, np.where(land, np.nan, 3.0).astype(np.float32), {"units": "m"}),
         "elevation": (dims, ground.astype(np.float32), {"units": "m"}),
         "crs": ((), np.int32(0), {"crs_wkt": crs.to_wkt(), "epsg_code": BENCH_CRS})},
        coords={"x": ("x", x), "y": ("y", y)},
        attrs={"town": "bench", "scenario": "synthetic benchmark"})
    return ds


def synthetic_inputs(folder: Path, n_buildings: int, field: xr.Dataset,
                     seed: int = 7) -> dict[str, Path]:
    """Buildings GeoPackage (EPSG:6680 footprints), mesh CSV and districts GeoPackage."""
    rng = np.random.default_rng(seed)
    x = field["x"].values
    y = field["y"].values
    land = np.isfinite(field["max_depth"].values)
    rows, cols = np.nonzero(land)
    pick = rng.choice(rows.size, n_buildings, replace=n_buildings > rows.size)
    cx = x[cols[pick]] + rng.uniform(-4, 4, n_buildings)
    cy = y[rows[pick]] + rng.uniform(-4, 4, n_buildings)
    w = rng.uniform(7, 12, n_buildings)
    d = rng.uniform(7, 12, n_buildings)
    geoms = shapely.box(cx - w / 2, cy - d / 2, cx + w / 2, cy + d / 2)
    structure = rng.choice(["wood", "rc", "steel", "masonry"], n_buildings,
                           p=[0.8, 0.1, 0.08, 0.02])
    storeys = rng.choice([1, 2, 3, 4], n_buildings, p=[0.35, 0.5, 0.1, 0.05])
    gdf = gpd.GeoDataFrame({"building_id": np.arange(n_buildings).astype(str),
                            "structure": structure, "storeys": storeys},
                           geometry=geoms, crs=BENCH_CRS)
    paths = {"buildings": folder / "buildings.gpkg", "population": folder / "population.csv",
             "districts": folder / "districts.gpkg"}
    gdf.to_file(paths["buildings"], driver="GPKG", engine="pyogrio")
    # 250 m census mesh over the field, in JGD2011 lon/lat
    t = pyproj.Transformer.from_crs(BENCH_CRS, meshcode.MESH_CRS, always_xy=True)
    gx, gy = np.meshgrid(np.linspace(x[0], x[-1], 200), np.linspace(y[0], y[-1], 200))
    lon, lat = t.transform(gx.ravel(), gy.ravel())
    codes = np.unique(meshcode.encode(lon, lat, 10))
    pd.DataFrame({"KEY_CODE": codes, "population": rng.integers(0, 400, codes.size)}).to_csv(
        paths["population"], index=False)
    edges_x = np.linspace(x[0] - 5, x[-1] + 5, 5)
    edges_y = np.linspace(y[0] - 5, y[-1] + 5, 5)
    boxes = [shapely.box(edges_x[i], edges_y[j], edges_x[i + 1], edges_y[j + 1])
             for j in range(4) for i in range(4)]
    gpd.GeoDataFrame({"district": [f"district {k + 1}" for k in range(16)]}, geometry=boxes,
                     crs=BENCH_CRS).to_file(paths["districts"], driver="GPKG", engine="pyogrio")
    return paths


def run(n_buildings: int = 100_000, grid_size: int = 2000, draws: int = 1000,
        partition_size: int | None = None) -> str:
    """Time reading, assessing and writing ``n_buildings`` on a ``grid_size``^2 10 m
    field; returns a report (seconds per stage, peak memory of the process).
    ``partition_size``: as :class:`DamageParameters` (None: its default); inventories
    larger than it are assessed in partitions in parallel with Dask threads."""
    from tsunami.damage import (
        DamageParameters,
        assess,
        load_buildings,
        load_districts,
        load_population,
    )
    from tsunami.damage.uncertainty import MonteCarlo

    # compile (or load from cache) the Monte Carlo kernel outside the timing
    MonteCarlo(np.ones(1), 1, 1, 4, draws=10).simulate(
        np.full((1, 1, 6), 0.5), np.ones(1), np.zeros(1), np.zeros(1), range(1), False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        field = synthetic_field(grid_size)
        paths = synthetic_inputs(folder, n_buildings, field)
        setup = time.perf_counter() - start
        stages: dict[str, float] = {}
        total0 = time.perf_counter()
        start = time.perf_counter()
        buildings = load_buildings(paths["buildings"])
        population = load_population(paths["population"])
        districts = load_districts(paths["districts"])
        stages["read exposure"] = time.perf_counter() - start
        start = time.perf_counter()
        params = DamageParameters(draws=draws)
        if partition_size is not None:
            params = dataclasses.replace(params, partition_size=partition_size)
        result = assess(field, buildings, population, districts, params)
        stages["assess"] = time.perf_counter() - start
        start = time.perf_counter()
        assets = result.write(folder / "out", "bench")
        stages["write"] = time.perf_counter() - start
        total = time.perf_counter() - total0
        sizes = sum(a.path.stat().st_size for a in assets)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    b = result.summary["town_summary"]["buildings"]
    lines = [f"damage assessment: {n_buildings:,} building footprints, {grid_size} x "
             f"{grid_size} cells of 10 m ({grid_size ** 2 / 1e6:.1f} M), "
             f"{population.cells.size:,} census mesh cells, 16 districts, {draws} draws, "
             f"partitions of up to {params.partition_size:,} buildings",
             f"  synthetic inputs made in {setup:.1f} s (not counted)"]
    for k, v in stages.items():
        lines.append(f"  {k:<14} {v:6.2f} s")
        if k == "assess":
            for kk, vv in result.timings.items():
                if not kk.startswith("write_"):
                    lines.append(f"    {kk[:-2]:<12} {vv:6.2f} s")
        if k == "write":
            for kk, vv in result.timings.items():
                if kk.startswith("write_"):
                    lines.append(f"    {kk[6:-2]:<12} {vv:6.2f} s")
    lines += [f"  total          {total:6.2f} s  (target: under 20 s for 100,000 buildings)",
              f"  {len(assets)} files, {sizes / 1e6:.1f} MB; DS4+ expected "
              f"{b['at_least']['DS4+']['expected']:.0f}",
              f"  peak memory (process): {peak:.0f} MB"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
