"""Quick-look PNG maps for a disaster HQ: depth classes over a hillshade of the ground.

Drawn in the output (projected) CRS so distances read true: the inundation-depth classes
in the MLIT palette over a hillshade of the DEM, the sea in pale blue, arrival-time
contours (minutes after the origin) and a title with the event, forecast number and issue
and origin times (UTC and local). The key (legend with units, north arrow, scale bar)
stands in a column right of the map, where it hides no data: drawn in the map's corners it
covered the most flooded tip of Aonae, and the arrow a flooded stretch of coast.
Japanese names render with the fonts of :func:`tsunami.maps.map_style`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LightSource, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import ndimage

from tsunami.depth_classes import DEPTH_CLASSES, hex_colour
from tsunami.maps import (
    add_north_arrow,
    add_scale_bar,
    label_projected_axes,
    legend_beside,
    map_style,
)
from tsunami.products.layers import NODATA, Layer


def depth_map(path: Path, elevation: np.ndarray, layers: dict[str, Layer], title: str,
              finest: tuple[np.ndarray, str] | None = None) -> Path:
    """Write the quick-look map of one town to ``path`` (PNG). ``finest``: the cells its
    finest grid covers (on the layers' lattice) and that grid's name, to outline where
    the resolution changes (a town window reaching past its 10 m grid shows coarser
    cells beyond)."""
    # the figure is the map: the saved image grows to take in what is drawn around it
    depth_figure(elevation, layers, title, finest).savefig(path, dpi=110,
                                                           bbox_inches="tight",
                                                           pad_inches=0.15)
    return path


def depth_figure(elevation: np.ndarray, layers: dict[str, Layer], title: str,
                 finest: tuple[np.ndarray, str] | None = None) -> Figure:
    """The figure :func:`depth_map` writes (matplotlib without pyplot)."""
    with map_style():
        return _depth_figure(elevation, layers, title, finest)


def _depth_figure(elevation: np.ndarray, layers: dict[str, Layer], title: str,
                  finest: tuple[np.ndarray, str] | None) -> Figure:
    depth_class = layers["depth_class"]
    arrival = np.where(layers["arrival_time"].values == NODATA, np.nan,
                       layers["arrival_time"].values)
    west, south, east, north = depth_class.bounds
    extent = (west, east, south, north)
    res = depth_class.transform.a
    height, width = depth_class.shape
    # 10 in of map filling the figure; title, axis labels and the key beside it are drawn
    # outside, in the margins the saved image adds (:func:`depth_map`)
    fig = Figure(figsize=(10, 10 * height / width))
    ax = fig.add_axes((0, 0, 1, 1))
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
    handles.append(Line2D([], [], color="#1f3d7a", lw=0.9,
                          label="arrival time (min after origin)"))
    covered = None if finest is None else finest[0] & known
    if covered is not None and covered.any() and (known & ~covered).any():
        ax.contour(west + (np.arange(width) + 0.5) * res,
                   north - (np.arange(height) + 0.5) * res, covered.astype(float),
                   levels=[0.5], colors="0.25", linewidths=1.0, linestyles="--")
        handles.append(Line2D([], [], color="0.25", lw=1.0, ls="--",
                              label=f"edge of {finest[1]}\n(coarser cells outside)"))
    legend_beside(ax, handles=handles, title="max inundation depth", fontsize=8,
                  title_fontsize=9)
    label_projected_axes(ax, depth_class.crs)
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    add_scale_bar(ax)
    add_north_arrow(ax)
    ax.set_title(title, fontsize=10)
    return fig

