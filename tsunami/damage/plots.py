"""Quick-look figures of a damage estimate (matplotlib without pyplot: safe in servers and
threads).

The map shows the buildings by expected damage state over the maximum inundation depth,
drawn in the region's output CRS (metres, equal aspect) like the town's quick-look map of
:mod:`tsunami.products.quicklook`, so that an HQ can lay one over the other, and the
forecast's identity (event, forecast number, issue and origin times in UTC and
local time); right of it, where they hide no building, its key (north arrow, scale bar,
the legend of buildings not assessed) and the two colour bars. Damage states use a
green-blue-black sequence that no colour of the MLIT depth palette comes near (CIE76
colour difference above 25 against every depth class), so a building never reads as a
depth.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import rasterio.warp
import shapely
from affine import Affine
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from pyproj import CRS
from rasterio.warp import Resampling

from tsunami.damage.field import TownField
from tsunami.damage.fragility import N_STATES, STATE_LABELS
from tsunami.damage.geometry import to_crs
from tsunami.depth_classes import DEPTH_BREAKS, DEPTH_CLASSES
from tsunami.localtime import format_time
from tsunami.maps import (
    add_north_arrow,
    add_scale_bar,
    label_projected_axes,
    legend_beside,
    map_style,
)

MLIT_DETAILED_RGB = tuple(rgb for _, _, rgb in DEPTH_CLASSES)
#: expected damage state 0 (none) .. 6 (washed away): near-white, greens and blues to black
STATE_COLOURS = ("#e0f3f8", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494", "#081d58", "#000000")
MAX_POINTS = 200_000  # beyond this, plot a random subset (the map is a quick look)
MAX_CELLS = 1500  # a side of the drawn depth lattice at most (the map is a quick look)


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def forecast_line(result, forecast: dict[str, str]) -> str:
    """``event: forecast N, issued <UTC (local)>; origin <UTC (local)>`` for titles."""
    tz = ZoneInfo(result.summary.get("local_time", {}).get("timezone", "UTC"))
    origin = _moment(forecast.get("origin_time") or result.field.attrs.get("origin_time"))
    parts = []
    if forecast.get("event_id"):
        parts.append(f"{forecast['event_id']}: forecast {forecast.get('forecast_number', '?')}"
                     f", issued {format_time(_moment(forecast.get('issue_time')), tz)}")
    parts.append(f"origin {format_time(origin, tz)}")
    return "; ".join(parts)


def casualty_method(summary: dict) -> str:
    """The casualty method in words, PROVISIONAL where parts of it are not the source's."""
    casualty = summary.get("parameters", {}).get("casualty", {})
    if casualty.get("model") == "cdmc_pre2012":
        return "CDMC pre-2012 formula, PROVISIONAL below 1 m and above 10 m"
    night = casualty.get("night")
    return f"Cabinet Office 2012 method, {'night' if night else 'daytime'} evacuation"


def quicklook_map(result, path: Path, crs: CRS, forecast: dict[str, str] | None = None
                  ) -> None:
    """Write :func:`map_figure` to ``path`` (PNG)."""
    map_figure(result, crs, forecast).savefig(path, format="png")


def bar_chart(result, path: Path, forecast: dict[str, str] | None = None) -> None:
    """Write :func:`chart_figure` to ``path`` (PNG)."""
    chart_figure(result, forecast).savefig(path, format="png")


def map_figure(result, crs: CRS, forecast: dict[str, str] | None = None) -> Figure:
    """Buildings coloured by expected damage state over the maximum inundation depth,
    drawn in the projected ``crs`` (metres, equal aspect): the region's output CRS, the
    one the town's quick-look map is drawn in, so that the two maps overlay."""
    if not crs.is_projected:
        raise ValueError(f"the damage map is drawn in a projected CRS, not {crs.name}")
    with map_style():
        return _map_figure(result, crs, forecast or {})


def _on_map_grid(f: TownField, crs: CRS, max_cells: int = MAX_CELLS
                ) -> tuple[dict[str, np.ndarray], tuple[float, float, float, float]]:
    """The maximum depth and ground elevation of ``f`` on a north-up lattice of square
    cells in ``crs`` (rows south first, NaN where it has none), about the field's cell
    size (coarser when more than ``max_cells`` cells a side: the map is a quick look),
    and the lattice's (west, south, east, north). ``inside``: 1 on the field, NaN off it
    (a lattice in degrees is a slightly turned quadrilateral in a plane CRS)."""
    west, south, east, north = rasterio.warp.transform_bounds(f.crs, crs, *f.bounds,
                                                              densify_pts=21)
    size = max(float(np.sqrt(np.prod(f.cell_size_m()))),
               max(east - west, north - south) / max_cells)
    nx, ny = int(np.ceil((east - west) / size)), int(np.ceil((north - south) / size))
    east, south = west + nx * size, north - ny * size
    inside = np.ones(f.shape, dtype=np.float32)
    sources = {"inside": (inside, Resampling.nearest),
               # the deepest water of the field's cells in a map cell, as the published
               # max_depth layer the quick-look map classifies
               "max_depth": (f.data["max_depth"], Resampling.max)}
    if "elevation" in f.data:
        sources["elevation"] = (f.data["elevation"], Resampling.nearest)
    out = {}
    for name, (values, resampling) in sources.items():
        drawn = np.full((ny, nx), np.nan, np.float32)
        rasterio.warp.reproject(
            source=np.ascontiguousarray(values[::-1], dtype=np.float32),  # north row first
            destination=drawn, src_transform=f.transform, src_crs=f.crs,
            dst_transform=Affine(size, 0.0, west, 0.0, -size, north), dst_crs=crs,
            src_nodata=np.nan, dst_nodata=np.nan, resampling=resampling)
        out[name] = drawn[::-1]
    return out, (west, south, east, north)


def _map_figure(result, crs: CRS, forecast: dict[str, str]) -> Figure:
    grids, (west, south, east, north) = _on_map_grid(result.field, crs)
    depth = grids["max_depth"].astype(np.float64)
    off_field = np.isnan(grids["inside"])
    elevation = grids.get("elevation")
    extent = (west, east, south, north)
    thr = result.params.casualty.inundation_threshold_m
    # about 5.6 in of map, then its key (about 1.3 in) and the two colour bars, for which
    # the constrained layout makes room in that order; as tall as such a map needs
    height = float(np.clip(5.6 * (north - south) / (east - west) + 1.4, 4.5, 11.0))
    fig = Figure(figsize=(10.3, height), dpi=130, layout="constrained")
    ax = fig.add_subplot()
    sea = ~np.isfinite(depth) & ~off_field
    base = np.where(off_field, np.nan, np.where(sea, 0.0, 1.0))
    ax.imshow(np.ma.masked_invalid(base), origin="lower", extent=extent,
              cmap=ListedColormap(["#cfe3f3", "#e6e6e6"]), vmin=0, vmax=1,
              interpolation="nearest")
    if elevation is not None:
        land = np.where(sea | off_field, np.nan, elevation.astype(np.float64))
        if np.isfinite(land).any():
            ny, nx = land.shape
            ax.contour(west + (np.arange(nx) + 0.5) * (east - west) / nx,
                       south + (np.arange(ny) + 0.5) * (north - south) / ny, land,
                       levels=[5, 10, 20, 40], colors="#b0b0b0", linewidths=0.4)
    edges = [thr, *DEPTH_BREAKS, max(100.0, np.nanmax(depth, initial=0) + 1)]
    cmap = ListedColormap([tuple(c / 255 for c in rgb) for rgb in MLIT_DETAILED_RGB])
    norm = BoundaryNorm(edges, cmap.N)
    wet = np.ma.masked_where(~(np.nan_to_num(depth) >= thr), depth)
    im = ax.imshow(wet, origin="lower", extent=extent, cmap=cmap, norm=norm,
                   interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, shrink=0.7, pad=0.01, ticks=edges[:-1], format="%g")
    cb.set_label("maximum inundation depth (m), MLIT classes")
    b = result.buildings
    if b is not None and len(b):
        pts = to_crs(shapely.point_on_surface(np.asarray(b.geometry.values)), b.crs, crs)
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        e = b["exp_ds"].to_numpy(dtype=np.float64)
        ok = np.isfinite(e)
        if ok.sum() > MAX_POINTS:
            keep = np.random.default_rng(0).choice(np.flatnonzero(ok), MAX_POINTS, replace=False)
            ok = np.zeros_like(ok)
            ok[keep] = True
        size = float(np.clip(4000.0 / max(ok.sum(), 1), 1.0, 14.0))
        sc = ax.scatter(x[ok], y[ok], c=e[ok], s=size, cmap=ListedColormap(STATE_COLOURS),
                        vmin=-0.5, vmax=N_STATES + 0.5, edgecolors="k", linewidths=0.3,
                        zorder=3)
        cb2 = fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.01, ticks=range(N_STATES + 1))
        cb2.ax.set_yticklabels(STATE_LABELS)
        cb2.set_label("expected damage state of each building")
        if (~np.isfinite(e)).any():
            ax.scatter(x[~np.isfinite(e)], y[~np.isfinite(e)], s=size, marker="x",
                       c="#d62728", linewidths=0.6, zorder=3, label="not assessed\n(sea cell)")
            legend_beside(ax, fontsize=7)
    ax.set_aspect("equal")
    label_projected_axes(ax, crs)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.ticklabel_format(style="plain", useOffset=False)  # whole metres, no "-6.6e4"
    add_scale_bar(ax)
    add_north_arrow(ax)
    ax.set_title(f"{result.name}: expected building damage (planning estimate, fragility "
                 f"{result.summary.get('fragility', {}).get('source_id', '-')})", fontsize=9)
    fig.suptitle(forecast_line(result, forecast), fontsize=9)
    return fig


def chart_figure(result, forecast: dict[str, str] | None = None) -> Figure:
    """Expected buildings per damage state with 5-95 % bars; people per depth class."""
    with map_style():
        return _chart_figure(result, forecast or {})


def _chart_figure(result, forecast: dict[str, str]) -> Figure:
    town = result.summary.get("town_summary", {})
    panels = [k for k in ("buildings", "people") if town.get(k)]
    fig = Figure(figsize=(5.2 * max(len(panels), 1), 4.6), dpi=130, layout="constrained")
    if not panels:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no exposure given", ha="center", va="center")
        ax.set_axis_off()
    for i, kind in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if kind == "buildings":
            states = town["buildings"]["by_state"]
            mean = np.array([v["expected"] for v in states.values()])
            lo = np.array([v["p05"] for v in states.values()])
            hi = np.array([v["p95"] for v in states.values()])
            pos = np.arange(mean.size)
            ax.bar(pos, mean, color=STATE_COLOURS, edgecolor="k", linewidth=0.5)
            ax.errorbar(pos, mean, yerr=[mean - lo, hi - mean], fmt="none", ecolor="#d62728",
                        capsize=3, linewidth=0.9, label="5-95 % range")
            ax.set_xticks(pos, [s.replace(" ", "\n", 1) for s in states], fontsize=7)
            ax.set_xlabel("damage state (Suppasri et al. 2013)")
            ax.set_ylabel("buildings (expected number)")
            ax.set_title(f"{result.name}: buildings by damage state", fontsize=10)
            ax.legend(fontsize=7)
        else:
            people = town["people"]
            classes = people["by_depth_class"]
            vals = np.array([v["expected"] for v in classes.values()])
            pos = np.arange(vals.size)
            colours = ["#e6e6e6"] + [tuple(c / 255 for c in rgb) for rgb in MLIT_DETAILED_RGB]
            ax.bar(pos, vals, color=colours[: vals.size], edgecolor="k", linewidth=0.5)
            ax.set_xticks(pos, list(classes), rotation=45, ha="right", fontsize=7)
            ax.set_xlabel("maximum inundation depth where they live (MLIT classes)")
            ax.set_ylabel("people (census residents)")
            c = people["casualties"]
            ax.set_title(f"people by maximum depth; casualties {c['expected']:.0f} "
                         f"({c['low']:.0f}-{c['high']:.0f})\n"
                         f"{casualty_method(result.summary)}", fontsize=9)
    fig.suptitle(f"{forecast_line(result, forecast)}\nplanning estimate: see the summary "
                 "JSON for the assumptions", fontsize=8)
    return fig
