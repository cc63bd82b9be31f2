"""Quick-look figures (matplotlib, no pyplot state: safe in servers and threads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from tsunami.damage.casualty import DEPTH_BREAKS
from tsunami.damage.fragility import N_STATES, STATE_LABELS

#: MLIT 水害ハザードマップ作成の手引き (H28) detailed-version depth colours (RGB), for the
#: classes < 0.3, 0.3-0.5, 0.5-1, 1-3, 3-5, 5-10, 10-20, >= 20 m (research notes, s. 3).
MLIT_DETAILED_RGB = ((255, 255, 179), (247, 245, 169), (248, 225, 166), (255, 216, 192),
                     (255, 183, 183), (255, 145, 145), (242, 133, 201), (220, 122, 220))
#: expected damage state 0 (none) .. 6 (washed away): light to dark
STATE_COLOURS = ("#f7f7f7", "#fde0c5", "#facba6", "#f59e72", "#e8605c", "#b92e5b", "#5c1a5e")
MAX_POINTS = 200_000  # beyond this, plot a random subset (the map is a quick look)


def quicklook_map(result, path: Path) -> None:
    """Buildings coloured by expected damage state over the maximum inundation depth."""
    f = result.field
    # a quick look needs no more pixels than the figure has: stride large lattices
    stride = max(1, int(np.ceil(max(f.shape) / 1500)))
    depth = f.data["max_depth"][::stride, ::stride].astype(np.float64)
    elevation = f.data.get("elevation")
    elevation = None if elevation is None else elevation[::stride, ::stride]
    west, south, east, north = f.bounds
    thr = result.params.casualty.inundation_threshold_m
    fig = Figure(figsize=(9.0, 7.0), dpi=130, layout="constrained")
    ax = fig.add_subplot()
    sea = ~np.isfinite(depth)
    base = np.where(sea, 0.0, 1.0)
    ax.imshow(np.ma.masked_invalid(base), origin="lower", extent=(west, east, south, north),
              cmap=ListedColormap(["#cfe3f3", "#e6e6e6"]), vmin=0, vmax=1,
              interpolation="nearest")
    if elevation is not None:
        land = np.where(sea, np.nan, elevation.astype(np.float64))
        if np.isfinite(land).any():
            ax.contour(np.linspace(west, east, depth.shape[1]),
                       np.linspace(south, north, depth.shape[0]), land,
                       levels=[5, 10, 20, 40], colors="#b0b0b0", linewidths=0.4)
    edges = [thr, *DEPTH_BREAKS, max(100.0, np.nanmax(depth, initial=0) + 1)]
    cmap = ListedColormap([tuple(c / 255 for c in rgb) for rgb in MLIT_DETAILED_RGB])
    norm = BoundaryNorm(edges, cmap.N)
    wet = np.ma.masked_where(~(np.nan_to_num(depth) >= thr), depth)
    im = ax.imshow(wet, origin="lower", extent=(west, east, south, north), cmap=cmap,
                   norm=norm, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, shrink=0.7, pad=0.01, ticks=edges[:-1], format="%g")
    cb.set_label("maximum inundation depth (m), MLIT classes")
    b = result.buildings
    if b is not None and len(b):
        from tsunami.damage.assess import _to_crs

        pts = _to_crs(shapely.point_on_surface(np.asarray(b.geometry.values)),
                      b.crs, f.crs)
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        e = b["expected_ds"].to_numpy(dtype=np.float64)
        ok = np.isfinite(e)
        if ok.sum() > MAX_POINTS:
            keep = np.random.default_rng(0).choice(np.flatnonzero(ok), MAX_POINTS, replace=False)
            ok = np.zeros_like(ok)
            ok[keep] = True
        size = float(np.clip(4000.0 / max(ok.sum(), 1), 1.0, 14.0))
        sc = ax.scatter(x[ok], y[ok], c=e[ok], s=size, cmap=ListedColormap(STATE_COLOURS),
                        vmin=-0.5, vmax=N_STATES + 0.5, edgecolors="k", linewidths=0.2,
                        zorder=3)
        cb2 = fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.01, ticks=range(N_STATES + 1))
        cb2.ax.set_yticklabels(STATE_LABELS)
        cb2.set_label("expected damage state of each building")
        if (~np.isfinite(e)).any():
            ax.scatter(x[~np.isfinite(e)], y[~np.isfinite(e)], s=size, marker="x",
                       c="#1f4e79", linewidths=0.6, zorder=3, label="not assessed (sea cell)")
            ax.legend(loc="lower left", fontsize=7)
    if f.geographic:
        ax.set_aspect(1.0 / np.cos(np.deg2rad((south + north) / 2)))
        ax.set_xlabel("longitude (degrees east)")
        ax.set_ylabel("latitude (degrees north)")
    else:
        ax.set_aspect("equal")
        ax.set_xlabel(f"x (m, {f.crs.to_string()})")
        ax.set_ylabel(f"y (m, {f.crs.to_string()})")
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.ticklabel_format(style="plain", useOffset=False)  # whole coordinates, no "+1.394e2"
    scen = ", ".join(str(s.get("scenario", "?")) for s in result.summary["forecast"][:3])
    ax.set_title(f"{result.name}: expected building damage, {scen}\n"
                 "planning estimate (fragility: "
                 f"{result.summary.get('fragility', {}).get('source_id', '-')})", fontsize=10)
    fig.savefig(path, format="png")


def bar_chart(result, path: Path) -> None:
    """Expected buildings per damage state with 5-95 % bars; people per depth class."""
    town = result.summary.get("town_summary", {})
    panels = [k for k in ("buildings", "people") if town.get(k)]
    fig = Figure(figsize=(5.0 * max(len(panels), 1), 4.2), dpi=130, layout="constrained")
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
            ax.errorbar(pos, mean, yerr=[mean - lo, hi - mean], fmt="none", ecolor="k",
                        capsize=3, linewidth=0.8, label="5-95 % range")
            ax.set_xticks(pos, [s.replace(" ", "\n", 1) for s in states], fontsize=7)
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
            ax.set_ylabel("people (census residents)")
            c = people["casualties"]
            ax.set_title(f"people by max depth; casualties {c['expected']:.0f} "
                         f"({c['low']:.0f}-{c['high']:.0f})", fontsize=9)
    fig.suptitle("planning estimate: see the summary JSON for the assumptions", fontsize=8)
    fig.savefig(path, format="png")
