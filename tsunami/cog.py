"""Cloud-Optimized GeoTIFFs whose zoomed-out views keep what matters.

GDAL builds COG overviews by nearest neighbour, averaging and the like, which lose peaks:
an isolated flooded block vanishes from a zoomed-out web map. Here each overview cell
(2 x 2 cells of the level below) takes the maximum (depths, speeds, classes), the minimum
(arrival times) or the sum (counts per cell) of the cells below it, ignoring nodata, and
the levels are handed to GDAL's COG driver through a VRT that declares them as overviews
(``OVERVIEWS=FORCE_USE_EXISTING``). Overviews are made until the image fits one 256 x 256
tile. DEFLATE compression, with the floating-point predictor for floats.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import CRS
from rasterio.io import MemoryFile

BLOCK = 256
RULES = ("max", "min", "sum")
GDAL_TYPES = {"float32": "Float32", "uint8": "Byte"}


def _missing(values: np.ndarray, nodata: float) -> np.ndarray:
    return np.isnan(values) if np.isnan(nodata) else values == nodata


def reduce_level(values: np.ndarray, nodata: float, how: str) -> np.ndarray:
    """One overview level: each cell the maximum, minimum or sum of the 2 x 2 cells below,
    ignoring nodata; nodata where all four are."""
    fill = {"max": -np.inf, "min": np.inf, "sum": 0.0}[how]
    h, w = values.shape
    padded = np.full((h + h % 2, w + w % 2), fill)
    missing = np.ones(padded.shape, dtype=bool)
    missing[:h, :w] = _missing(values, nodata)
    padded[:h, :w] = np.where(missing[:h, :w], fill, values)
    shape = (padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
    out = getattr(padded.reshape(shape), how)(axis=(1, 3))
    empty = missing.reshape(shape).all(axis=(1, 3))
    return np.where(empty, nodata, out).astype(values.dtype)


def overview_levels(values: np.ndarray, nodata: float, how: str) -> list[np.ndarray]:
    """The overview images of ``values``, halving until they fit one tile."""
    levels = [values]
    while max(levels[-1].shape) > BLOCK:
        levels.append(reduce_level(levels[-1], nodata, how))
    return levels[1:]


def write_cog(path: Path, bands: list[np.ndarray], *, transform: Affine, crs: CRS,
              nodata: float, overview: str, tags: dict[str, str] | None = None,
              descriptions: list[str] | None = None, units: list[str] | None = None,
              band_tags: list[dict[str, str]] | None = None,
              colormap: dict[int, tuple[int, int, int, int]] | None = None) -> Path:
    """Write ``bands`` (2-D arrays of one dtype, north-up) as a COG to ``path`` (the caller
    handles atomicity); ``overview``: "max", "min" or "sum"."""
    if overview not in RULES:
        raise ValueError(f"overview rule {overview!r}: expected one of {RULES}")
    pyramids = [[band, *overview_levels(band, nodata, overview)] for band in bands]
    files = []
    try:
        for level in range(len(pyramids[0])):
            images = [pyramid[level] for pyramid in pyramids]
            ny, nx = images[0].shape
            memory = MemoryFile()
            files.append(memory)
            with memory.open(driver="GTiff", width=nx, height=ny, count=len(images),
                             dtype=images[0].dtype, crs=crs, nodata=nodata,
                             transform=transform @ Affine.scale(2**level)) as dst:
                for b, image in enumerate(images, start=1):
                    dst.write(image, b)
        vrt = _vrt([f.name for f in files], bands, transform, crs, nodata, tags or {},
                   descriptions, units, band_tags, colormap)
        with rasterio.open(vrt) as src:
            rasterio.shutil.copy(
                src, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=BLOCK,
                PREDICTOR="FLOATING_POINT" if bands[0].dtype.kind == "f" else "STANDARD",
                OVERVIEWS="FORCE_USE_EXISTING" if len(files) > 1 else "NONE")
    finally:
        for memory in files:
            memory.close()
    return path


def _metadata(tags: dict[str, str]) -> str:
    items = "".join(f"<MDI key={quoteattr(str(k))}>{escape(str(v))}</MDI>"
                    for k, v in tags.items())
    return f"<Metadata>{items}</Metadata>"


def _vrt(names: list[str], bands: list[np.ndarray], transform: Affine, crs: CRS,
         nodata: float, tags: dict[str, str], descriptions, units, band_tags,
         colormap) -> str:
    """A VRT of the full-resolution images (with the metadata) declaring the others as
    their overviews."""
    ny, nx = bands[0].shape
    dtype = GDAL_TYPES[str(bands[0].dtype)]
    colours = ""
    if colormap:
        entries = "".join(f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>' for r, g, b, a in (
            colormap.get(k, (0, 0, 0, 0)) for k in range(max(colormap) + 1)))
        colours = f"<ColorInterp>Palette</ColorInterp><ColorTable>{entries}</ColorTable>"
    out = [f'<VRTDataset rasterXSize="{nx}" rasterYSize="{ny}">',
           f"<SRS>{escape(crs.to_wkt())}</SRS>",
           f"<GeoTransform>{', '.join(repr(float(v)) for v in transform.to_gdal())}"
           "</GeoTransform>", _metadata(tags)]
    for b in range(1, len(bands) + 1):
        def source(name: str, band: int = b) -> str:
            return (f'<SourceFilename relativeToVRT="0">{escape(name)}</SourceFilename>'
                    f"<SourceBand>{band}</SourceBand>")

        out.append(f'<VRTRasterBand dataType="{dtype}" band="{b}">')
        if band_tags:
            out.append(_metadata(band_tags[b - 1]))
        if descriptions:
            out.append(f"<Description>{escape(descriptions[b - 1])}</Description>")
        if units:
            out.append(f"<UnitType>{escape(units[b - 1])}</UnitType>")
        out.append(f"<NoDataValue>{nodata:g}</NoDataValue>{colours}")
        out.append(f"<SimpleSource>{source(names[0])}</SimpleSource>")
        out += [f"<Overview>{source(name)}</Overview>" for name in names[1:]]
        out.append("</VRTRasterBand>")
    out.append("</VRTDataset>")
    return "".join(out)
