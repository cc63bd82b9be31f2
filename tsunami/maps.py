"""What every map for an HQ shares: fonts that draw Japanese names, and a key (legend,
north arrow, scale bar) drawn right of the map, where it hides no data.

Fonts: DejaVu Sans (matplotlib's own) for Latin text, falling back to IPAexGothic for
Japanese event, town and district names. IPAexGothic is the font the ``matplotlib-fontja``
package ships (IPA Font License v1.0); it is registered with matplotlib directly, without
importing that package, whose import would change matplotlib's global settings.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.offsetbox import AnchoredOffsetbox, AuxTransformBox, TextArea, VPacker
from matplotlib.patches import Rectangle
from matplotlib.transforms import Transform, blended_transform_factory, offset_copy
from pyproj import CRS

LATIN_FONT = "DejaVu Sans"
JAPANESE_FONT = "IPAexGothic"


@cache
def japanese_font_path() -> Path | None:
    """The IPAexGothic font file shipped by ``matplotlib-fontja`` (None if not installed)."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "ipaexg.ttf"
    if not path.exists():
        return None
    font_manager.fontManager.addfont(str(path))
    return path


@contextmanager
def map_style():
    """Draw inside this context so that Japanese text renders (Latin first, then the
    Japanese font for the characters the Latin one lacks)."""
    families = [LATIN_FONT] + ([JAPANESE_FONT] if japanese_font_path() else [])
    with matplotlib.rc_context({"font.family": families}):
        yield


def nice_length(span: float) -> float:
    """A 1-2-5 length near a fifth of ``span`` (scale bars)."""
    target = span / 5
    return max(s * 10.0**e for e in range(-1, 7) for s in (1, 2, 5) if s * 10.0**e <= target)


KEY_GAP_PT = 12.0  # between a map and the key drawn right of it
# the scale bar and the north arrow drawn right of a map stack up from its foot to this
# height (points); the legend goes above
KEY_STACK_PT = 110.0


def beside(ax, x_pt: float, y_pt: float) -> Transform:
    """Axes coordinates of ``ax`` shifted by points: ``(1, 0)`` in it is ``x_pt`` right of
    and ``y_pt`` above the lower right corner of the map, in the margin where a key hides
    no data."""
    return offset_copy(ax.transAxes, fig=ax.figure, x=x_pt, y=y_pt, units="points")


def legend_beside(ax, **kwargs) -> None:
    """The legend of ``ax`` right of it, above the scale bar and north arrow drawn there;
    ``kwargs`` as for :meth:`~matplotlib.axes.Axes.legend`."""
    ax.legend(loc="lower left", bbox_to_anchor=(1, 0), borderaxespad=0,
              bbox_transform=beside(ax, KEY_GAP_PT, KEY_STACK_PT), **kwargs)


def add_scale_bar(ax, metres_per_unit: float = 1.0) -> float:
    """A scale bar for ``ax`` (data limits must be set) right of it at its foot, under
    :func:`legend_beside`; returns its length in metres. ``metres_per_unit``: metres per x
    unit (1 for projected axes, 111,320 cos(latitude) for degrees of longitude)."""
    west, east = ax.get_xlim()
    length_m = nice_length((east - west) * metres_per_unit)
    length = length_m / metres_per_unit
    # long in the map's x units, thick in inches: it measures the map wherever it stands
    bar = AuxTransformBox(blended_transform_factory(ax.transData, ax.figure.dpi_scale_trans))
    thick = 4 / 72
    bar.add_artist(Rectangle((0, 0), length, thick, facecolor="k", edgecolor="none"))
    bar.add_artist(Rectangle((0, thick / 4), length / 2, thick / 2, facecolor="w",
                             edgecolor="none"))
    label = TextArea(f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m",
                     textprops=dict(fontsize=9))
    box = VPacker(children=[label, bar], align="center", pad=0, sep=3)
    anchored = AnchoredOffsetbox("lower left", child=box, frameon=False, borderpad=0, pad=0,
                                 bbox_to_anchor=(1, 0),
                                 bbox_transform=beside(ax, KEY_GAP_PT, 0))
    anchored.set_zorder(6)
    ax.add_artist(anchored)
    return length_m


def add_north_arrow(ax) -> None:
    """A north arrow right of ``ax`` (north-up maps), between its scale bar and
    :func:`legend_beside`."""
    # the tip; the N 55 points below it
    ax.annotate("N", xy=(1, 0), xycoords=beside(ax, KEY_GAP_PT + 10, KEY_STACK_PT - 15),
                xytext=(0, -55), textcoords="offset points",
                ha="center", va="center", fontsize=13, zorder=6,
                arrowprops=dict(facecolor="k", width=5, headwidth=15, headlength=12))


def label_projected_axes(ax, crs: CRS) -> None:
    """Axis labels of a map drawn in the projected ``crs``, with units and the CRS (e.g.
    ``easting (m, EPSG:6679)``), so that maps of one town drawn in one CRS say so alike."""
    epsg = crs.to_epsg()
    name = f"EPSG:{epsg}" if epsg else crs.name
    ax.set_xlabel(f"easting (m, {name})")
    ax.set_ylabel(f"northing (m, {name})")
