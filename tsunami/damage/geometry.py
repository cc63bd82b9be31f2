"""Coordinate transformation of shapely geometries (used by assessment and maps)."""

from __future__ import annotations

import numpy as np
import pyproj
import shapely
from pyproj import CRS


def transformer(src: CRS, dst: CRS) -> pyproj.Transformer | None:
    """A lon/lat-ordered transformer, or None when the CRSs are the same."""
    if src == dst:
        return None
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def to_crs(geoms: np.ndarray, src: CRS, dst: CRS) -> np.ndarray:
    """Shapely geometries transformed from ``src`` to ``dst``."""
    t = transformer(src, dst)
    if t is None:
        return geoms
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
