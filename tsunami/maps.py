"""What every map for an HQ shares: fonts that draw Japanese names, a scale bar, a north
arrow.

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


def add_scale_bar(ax, metres_per_unit: float = 1.0) -> float:
    """A scale bar in the lower right of ``ax`` (data limits must be set); returns its
    length in metres. ``metres_per_unit``: metres per x unit (1 for projected axes,
    111,320 cos(latitude) for degrees of longitude)."""
    west, east = ax.get_xlim()
    south, north = ax.get_ylim()
    length_m = nice_length((east - west) * metres_per_unit)
    length = length_m / metres_per_unit
    x0, y0 = east - 0.05 * (east - west) - length, south + 0.05 * (north - south)
    ax.plot([x0, x0 + length], [y0, y0], color="k", lw=4, solid_capstyle="butt", zorder=5)
    ax.plot([x0, x0 + length / 2], [y0, y0], color="w", lw=2, solid_capstyle="butt",
            zorder=6)
    ax.text(x0 + length / 2, y0 + 0.015 * (north - south),
            f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m",
            ha="center", va="bottom", fontsize=9, zorder=6,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1))
    return length_m


def add_north_arrow(ax) -> None:
    """A north arrow in the upper right of ``ax`` (north-up maps)."""
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.85), xycoords="axes fraction",
                ha="center", va="center", fontsize=13, zorder=6,
                arrowprops=dict(facecolor="k", width=5, headwidth=15, headlength=12))
