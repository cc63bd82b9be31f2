"""Quick-look PNG maps for a disaster HQ: depth classes over a hillshade of the ground.

Drawn in the output (projected) CRS so distances read true: the inundation-depth classes
in the MLIT palette over a hillshade of the DEM, the sea in pale blue, arrival-time
contours (minutes after the origin), a legend with units, a scale bar, a north arrow and
a title with the event, forecast number and issue and origin times (UTC and local).
Japanese names render with the fonts of :func:`tsunami.maps.map_style`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LightSource, ListedColormap
from matplotlib.patches import Patch
from scipy import ndimage

from tsunami.depth_classes import DEPTH_CLASSES, hex_colour
from tsunami.maps import add_north_arrow, add_scale_bar, map_style
from tsunami.products.layers import NODATA, Layer


def depth_map(path: Path, town: str, elevation: np.ndarray, layers: dict[str, Layer],
              title: str, finest: tuple[np.ndarray, str] | None = None) -> Path:
    """Write the quick-look map of one town to ``path`` (PNG). ``finest``: the cells its
    finest grid covers (on the layers' lattice) and that grid's name, to outline where
    the resolution changes (a town window reaching past its 10 m grid shows coarser
    cells beyond)."""
    with map_style():
        return _depth_map(path, town, elevation, layers, title, finest)


def _depth_map(path: Path, town: str, elevation: np.ndarray, layers: dict[str, Layer],
               title: str, finest: tuple[np.ndarray, str] | None) -> Path:
    depth_class = layers["depth_class"]
    arrival = np.where(layers["arrival_time"].values == NODATA, np.nan,
                       layers["arrival_time"].values)
    west, south, east, north = depth_class.bounds
    extent = (west, east, south, north)
    res = depth_class.transform.a
    height, width = depth_class.shape
    fig, ax = plt.subplots(figsize=(10, 10 * height / width + 1.2))
    known = np.isfinite(elevation)  # no model grid there: drawn neither as land nor as sea
    land = known & (np.nan_to_num(elevation) > 0)
    # shade a copy with holes filled from the nearest value: a hole read as 0 m would draw
    # a cliff along its edge
    nearest = ndimage.distance_transform_edt(~known, return_distances=False,
                                             return_indices=True) if known.any() else None
    filled = elevation[tuple(nearest)] if nearest is not None else np.zeros_like(elevation)
    shade = LightSource(azdeg=315, altdeg=45).hillshade(filled, vert_exag=2.0, dx=res,
                                                        dy=res)
    ax.imshow(np.where(land, shade, np.nan), extent=extent, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.imshow(np.where(known & ~land, 1.0, np.nan), extent=extent,
              cmap=ListedColormap(["#cfe4f2"]), interpolation="nearest")
    colours = [hex_colour(rgb) for _, _, rgb in DEPTH_CLASSES]
    classes = np.where(depth_class.values > 0, depth_class.values, np.nan)
    ax.imshow(classes, extent=extent, cmap=ListedColormap(colours), vmin=0.5,
              vmax=len(colours) + 0.5, interpolation="nearest", alpha=0.95)
    if np.isfinite(arrival).any():
        top = float(np.nanmax(arrival))
        step = 1 if top <= 10 else (2 if top <= 20 else 5)
        levels = np.arange(step, top + step, step)
        if levels.size:
            x = west + (np.arange(width) + 0.5) * res
            y = north - (np.arange(height) + 0.5) * res
            cs = ax.contour(x, y, arrival, levels=levels, colors="#1f3d7a", linewidths=0.7)
            ax.clabel(cs, fmt="%g min", fontsize=7)
    ax.contour(west + (np.arange(width) + 0.5) * res, north - (np.arange(height) + 0.5) * res,
               np.ma.masked_invalid(elevation), levels=[0.0], colors="k", linewidths=0.6)
    handles = [Patch(facecolor=c, edgecolor="0.4", label=label)
               for c, (_, label, _) in zip(colours, DEPTH_CLASSES, strict=True)]
    handles.append(plt.Line2D([], [], color="#1f3d7a", lw=0.9,
                              label="arrival time (min after origin)"))
    covered = None if finest is None else finest[0] & known
    if covered is not None and covered.any() and (known & ~covered).any():
        ax.contour(west + (np.arange(width) + 0.5) * res,
                   north - (np.arange(height) + 0.5) * res, covered.astype(float),
                   levels=[0.5], colors="0.25", linewidths=1.0, linestyles="--")
        handles.append(plt.Line2D([], [], color="0.25", lw=1.0, ls="--",
                                  label=f"edge of {finest[1]} (coarser cells outside)"))
    ax.legend(handles=handles, title="max inundation depth", loc="lower left", fontsize=8,
              title_fontsize=9, framealpha=0.9)
    epsg = depth_class.crs.to_epsg()
    ax.set_xlabel(f"easting (m), EPSG:{epsg}" if epsg else "easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    add_scale_bar(ax)
    add_north_arrow(ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

