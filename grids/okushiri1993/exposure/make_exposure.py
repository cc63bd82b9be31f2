"""Generate the SYNTHETIC Aonae exposure of the Okushiri demo (see SOURCE.md).

NOT SURVEY DATA. Buildings are placed at random (fixed seed) on the low land of the Aonae
peninsula in the real topography (AO15.tif: ground 1-15 m, 139.44-139.49 E,
42.035-42.07 N), with types and counts representative of a Hokkaido fishing town in 1993.
Run from the repository root:

    .venv/bin/python grids/okushiri1993/exposure/make_exposure.py

Writes, next to this script: aonae_buildings.gpkg (footprints, EPSG:6668),
aonae_population_250m.csv (JIS X 0410 1/4 mesh, KEY_CODE,population) and
aonae_districts.geojson (three synthetic zones, EPSG:4326).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from shapely import affinity

from tsunami.damage.meshcode import encode

HERE = Path(__file__).resolve().parent
DEM = HERE.parent / "AO15.tif"
SEED = 19930712
BOX = (139.44, 139.49, 42.035, 42.07)  # west, east, south, north (degrees)
GROUND = (1.0, 15.0)  # m above the DEM datum
PERSONS_PER_HOUSE = 3.0  # assumption (see SOURCE.md)
MIN_SPACING_M = 14.0  # between building centres

#: (structure, storeys, number, footprint width x depth in m, ground range in m)
CLASSES = [
    ("wood", 1, 200, (8.0, 10.0), GROUND),   # single-storey wooden houses
    ("wood", 2, 240, (8.0, 10.0), GROUND),   # two-storey wooden houses
    ("steel", 1, 14, (15.0, 25.0), (1.0, 4.0)),  # fish processing sheds, warehouses
    ("steel", 2, 6, (12.0, 18.0), (1.0, 6.0)),  # shops/offices near the harbour
    ("masonry", 1, 8, (6.0, 8.0), GROUND),   # concrete-block storehouses
    ("rc", 2, 6, (15.0, 25.0), (2.0, 12.0)),  # co-op, clinic, branch office
    ("rc", 3, 6, (20.0, 35.0), (2.0, 12.0)),  # school, community centre, lodging
]


def metres_per_degree(lat: float) -> tuple[float, float]:
    r = 6_371_000.0
    return np.deg2rad(1.0) * r * np.cos(np.deg2rad(lat)), np.deg2rad(1.0) * r


def main() -> None:
    rng = np.random.default_rng(SEED)
    with rasterio.open(DEM) as src:
        z = src.read(1).astype(np.float64)
        t = src.transform
    rows, cols = np.indices(z.shape)
    lon = t.c + (cols + 0.5) * t.a
    lat = t.f + (rows + 0.5) * t.e
    west, east, south, north = BOX
    ok = (np.isfinite(z) & (z > GROUND[0]) & (z < GROUND[1]) & (lon > west) & (lon < east)
          & (lat > south) & (lat < north))
    cand_lon, cand_lat, cand_z = lon[ok], lat[ok], z[ok]
    # settlements cluster on the flattest, lowest ground near the shore
    weight = np.where(cand_z < 8.0, 1.0, 0.4)
    mx, my = metres_per_degree(42.05)
    placed: list[tuple[float, float]] = []
    records = []
    order = sorted(CLASSES, key=lambda c: -c[3][0] * c[3][1])  # large buildings first
    for structure, storeys, number, (w, d), (z0, z1) in order:
        sel = (cand_z >= z0) & (cand_z <= z1)
        p = weight * sel
        p = p / p.sum()
        made = 0
        tries = 0
        while made < number:
            tries += 1
            if tries > 200_000:
                raise RuntimeError(f"could not place {structure} {storeys}")
            k = rng.choice(p.size, p=p)
            # jitter within the DEM cell (0.9" x 0.54")
            x = cand_lon[k] + (rng.random() - 0.5) * t.a
            y = cand_lat[k] + (rng.random() - 0.5) * -t.e
            spacing = max(MIN_SPACING_M, 0.6 * max(w, d))
            if any(((x - px) * mx) ** 2 + ((y - py) * my) ** 2 < spacing ** 2
                   for px, py in placed):
                continue
            placed.append((x, y))
            angle = rng.uniform(-30.0, 30.0)
            rect = shapely.box(-w / 2, -d / 2, w / 2, d / 2)
            rect = affinity.rotate(rect, angle, origin=(0, 0))
            # metres -> degrees around the centre
            rect = affinity.scale(rect, 1.0 / mx, 1.0 / my, origin=(0, 0))
            rect = affinity.translate(rect, x, y)
            records.append({"structure": structure, "storeys": storeys, "geometry": rect,
                            "lon": x, "lat": y})
            made += 1
    gdf = gpd.GeoDataFrame(records, crs="EPSG:6668")
    gdf = gdf.sort_values(["lat", "lon"], ascending=[False, True]).reset_index(drop=True)
    gdf.insert(0, "building_id", [f"AON-{i + 1:04d}" for i in range(len(gdf))])
    residents = np.where(gdf["structure"] == "wood", PERSONS_PER_HOUSE, 0.0)
    codes = encode(gdf["lon"].to_numpy(), gdf["lat"].to_numpy(), 10)
    pop = (pd.DataFrame({"KEY_CODE": codes, "population": residents})
           .groupby("KEY_CODE", as_index=False)["population"].sum())
    pop["population"] = pop["population"].round().astype(int)
    out = HERE / "aonae_buildings.gpkg"
    out.unlink(missing_ok=True)
    gdf.drop(columns=["lon", "lat"]).to_file(out, driver="GPKG", layer="buildings",
                                             engine="pyogrio")
    pop.to_csv(HERE / "aonae_population_250m.csv", index=False)
    zones = gpd.GeoDataFrame(
        {"district": ["Aonae south cape (synthetic zone)", "Aonae harbour (synthetic zone)",
                      "Aonae east shore (synthetic zone)"]},
        geometry=[shapely.box(139.43, 42.03, 139.50, 42.052),
                  shapely.box(139.43, 42.052, 139.47, 42.075),
                  shapely.box(139.47, 42.052, 139.50, 42.075)], crs="EPSG:4326")
    dpath = HERE / "aonae_districts.geojson"
    dpath.unlink(missing_ok=True)
    zones.to_file(dpath, driver="GeoJSON", engine="pyogrio")
    print(f"{len(gdf)} buildings, {int(pop['population'].sum())} residents in "
          f"{len(pop)} 250 m mesh cells")
    print(gdf.groupby(["structure", "storeys"]).size().to_string())


if __name__ == "__main__":
    main()
