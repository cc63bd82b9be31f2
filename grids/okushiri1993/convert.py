"""Convert the shared Okushiri grids to the compact GeoTIFFs shipped here.

    python grids/okushiri1993/convert.py ../shared/data/okushiri1993

float64 -> float32 (elevations to ~1 mm, displacement to ~1 um: far below the data's own
accuracy), DEFLATE with the floating-point predictor, 256 x 256 tiles, nodata NaN.
"""

import sys
from pathlib import Path

import numpy as np
import rasterio

NAMES = ["OK24", "OK03", "AO15", "MO01", "MB05", "HNO1993"]


def convert(source: Path, target: Path) -> None:
    for name in NAMES:
        with rasterio.open(source / f"{name}.tif") as src:
            values = src.read(1, masked=True).filled(np.nan).astype(np.float32)
            profile = dict(driver="GTiff", width=src.width, height=src.height, count=1,
                           dtype="float32", crs=src.crs, transform=src.transform,
                           nodata=np.nan, compress="deflate", predictor=3, zlevel=9,
                           tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(target / f"{name}.tif", "w", **profile) as dst:
            dst.write(values, 1)
            dst.update_tags(1, units="m", vertical="displacement of the sea surface"
                            if name == "HNO1993" else "elevation, positive up")


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(__file__).parent)
