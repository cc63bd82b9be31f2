"""Convert the shared 2011 Tohoku data to the files shipped here.

    python grids/tohoku2011/convert.py ../shared/data/tohoku2011

The ETOPO1 grid of the Japan Trench becomes ``etopo1_japan_trench.tif``, the Satake et
al. (2013) slip model ``satake2013_subfaults.csv`` (the subfault table format of
``tsunami run``), and the records of the five stations inside the grid are copied to
``gauges/`` unchanged.

The source file is an ESRI ASCII grid whose six header lines put the value BEFORE the
key (``481 ncols``), which GDAL refuses; its nodes are grid-registered (the first
column lies at 139 E, the last at 147 E), so as a raster of cells centred on the nodes
it spans 138.99167...147.00833 E and 33.99167...41.00833 N. Values are whole metres,
positive up: stored losslessly as int16, DEFLATE, nodata -32768, EPSG:4326.
"""

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

KEYS = {"ncols", "nrows", "xll", "yll", "cellsize", "nodata_value"}


def read_value_first_asc(path: Path) -> tuple[dict[str, float], np.ndarray]:
    lines = path.read_text().splitlines()
    header = {}
    for line in lines[:6]:
        value, key = line.split()
        if key.lower() not in KEYS:
            raise ValueError(f"{path}: unexpected header line {line!r}")
        header[key.lower()] = float(value)
    values = np.array([row.split() for row in lines[6:]], dtype=np.float64)
    if values.shape != (int(header["nrows"]), int(header["ncols"])):
        raise ValueError(f"{path}: {values.shape} values for header {header}")
    return header, values


def convert(source: Path, target: Path) -> None:
    header, values = read_value_first_asc(source)
    size = header["cellsize"]
    # Grid-registered nodes: (xll, yll) is the south-west node, a cell centre.
    transform = Affine(size, 0.0, header["xll"] - size / 2, 0.0, -size,
                       header["yll"] + (values.shape[0] - 0.5) * size)
    profile = dict(driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                   dtype="int16", crs="EPSG:4326", transform=transform,
                   nodata=int(header["nodata_value"]), compress="deflate", predictor=2,
                   zlevel=9)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(values.astype(np.int16), 1)
        dst.update_tags(1, units="m", vertical="elevation, positive up (ETOPO1 ice surface)")
        dst.update_tags(source="NOAA ETOPO1 (Amante & Eakins 2009, doi:10.7289/V5C8276M), "
                        "public domain", original=source.name)


#: Satake et al. (2013) geometry by row (0 = trench): width (km), dip (deg), top depth (km).
SATAKE_ROWS = {"0": (25, 8, 0.0), "1": (25, 8, 3.5), "2": (50, 10, 7.0), "3": (50, 12, 15.6),
               "4": (50, 16, 26.0)}
SATAKE_WINDOW_S = 30.0  # each of the five time windows lasts 30 s


def convert_satake(source: Path, target: Path) -> None:
    """One row per subfault and time window with slip: the window's slip, starting at the
    subfault's onset (``timeRise``, minutes) plus 30 s per earlier window, rising over 30
    s. Strike 193, rake 81, length 50 km for all; lat/lon locate the strike-start end of
    the top edge (scenario ``reference = "top_start"``)."""
    lines = [
        "# Satake, Fujii, Harada & Namegaya (2013), BSSA 103(2B), 1473-1492: 55 subfaults,",
        "# slip in five 30-s time windows after each subfault's onset (rupture front 2 km/s);",
        "# from GeoscienceAustralia/ptha (BSD-3) satake13_data.csv, converted by convert.py.",
        "# longitude/latitude: strike-start end of the top edge (reference = top_start).",
        "longitude,latitude,depth_m,strike,dip,rake,slip_m,length_m,width_m,rupture_time_s,"
        "rise_time_s",
    ]
    with open(source, newline="") as f:
        for row in csv.DictReader(f):
            width, dip, top = SATAKE_ROWS[row["name"][0]]
            onset = 60.0 * float(row["timeRise"])
            windows = [float(row[f"s{k}"]) for k in range(1, 6)]
            if abs(sum(windows) - float(row["total"])) > 0.02:
                raise ValueError(f"{source}: {row['name']} windows do not add up to total")
            for k, slip in enumerate(windows):
                if slip > 0:
                    lines.append(f"{row['lon']},{row['lat']},{top * 1e3:.0f},193,{dip},81,"
                                 f"{slip},50000,{width * 1e3:.0f},"
                                 f"{onset + k * SATAKE_WINDOW_S:.1f},{SATAKE_WINDOW_S:.0f}")
    target.write_text("\n".join(lines) + "\n")


GAUGES = ("P02", "P06", "802", "806", "807")


if __name__ == "__main__":
    shared, here = Path(sys.argv[1]), Path(__file__).parent
    convert(shared / "bathymetry" / "etopo1min139E147E34N41N.asc",
            here / "etopo1_japan_trench.tif")
    convert_satake(shared / "faults" / "satake13_data.csv", here / "satake2013_subfaults.csv")
    (here / "gauges").mkdir(exist_ok=True)
    for name in GAUGES:
        shutil.copyfile(shared / "gauges" / f"{name}.dat", here / "gauges" / f"{name}.dat")
