"""Regenerate the synthetic bay DEM: a small georeferenced coast for tests and notebooks.

    python grids/synthetic_bay/make_inputs.py

Writes ``synthetic_bay.tif``: elevation (m, positive up, EPSG:4326) on a 0.005 degree
lattice over 138.8-140.2 E, 41.2-42.8 N. Not a real place: a straight coast at about
139.95 E with a bay 4 km deep centred on 42.0 N; offshore a shelf from 5 m deepening by
3 m per km for 15 km, then a slope of 100 m per km to 3,000 m; ashore a coastal plain
rising 1.5 m per km for 4 km, then hills rising 20 m per km. Analytic, so the file is
regenerated exactly.
"""

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

STEP = 0.005
WEST, EAST, SOUTH, NORTH = 138.8, 140.2, 41.2, 42.8
KM_PER_DEGREE_LON = 111.19 * np.cos(np.radians(42.0))


def elevation(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Ground and sea-bed elevation (m) of the synthetic coast."""
    coast = 139.95 + 0.05 * np.exp(-(((lat - 42.0) / 0.04) ** 2))  # the bay pushes the coast east
    x = (lon - coast) * KM_PER_DEGREE_LON  # km east of the shoreline
    sea = -(5.0 + np.minimum(3.0 * -x, 45.0)) - np.clip(-x - 15.0, 0.0, None) * 100.0
    land = 1.5 * np.minimum(x, 4.0) + 20.0 * np.clip(x - 4.0, 0.0, None)
    return np.maximum(np.where(x < 0, sea, land), -3000.0)


def main() -> None:
    lon = WEST + (np.arange(round((EAST - WEST) / STEP)) + 0.5) * STEP
    lat = NORTH - (np.arange(round((NORTH - SOUTH) / STEP)) + 0.5) * STEP
    values = elevation(*np.meshgrid(lon, lat)).astype(np.float32)
    profile = dict(driver="GTiff", width=lon.size, height=lat.size, count=1, dtype="float32",
                   crs="EPSG:4326", transform=Affine(STEP, 0, WEST, 0, -STEP, NORTH),
                   compress="deflate", predictor=3, zlevel=9)
    with rasterio.open(Path(__file__).parent / "synthetic_bay.tif", "w", **profile) as dst:
        dst.write(values, 1)
        dst.update_tags(1, units="m", vertical="elevation, positive up")


if __name__ == "__main__":
    main()
