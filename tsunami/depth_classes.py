"""Inundation-depth classes shared by the damage estimates and the published products.

The detailed (8-class) palette of MLIT's hazard-map guide (水害ハザードマップ作成の手引き,
2016): 0.01-0.3, 0.3-0.5, 0.5-1, 1-3, 3-5, 5-10, 10-20, >= 20 m. Flooding counts from
1 cm (the Cabinet Office's inundation area). A class holds depths from its lower bound
(included) to its upper bound (excluded); the comparison is made in float32, the type of
the published layers, so that a GIS client reading the float32 layer and this module
put every cell in the same class.
"""

from __future__ import annotations

import math

import numpy as np

FLOODED = 0.01  # m: depth counted as inundation (Cabinet Office: >= 1 cm)

# (upper bound m, label, RGB): MLIT 2016 detailed palette; class k = index + 1.
DEPTH_CLASSES = [
    (0.3, "0.01-0.3 m", (255, 255, 179)),
    (0.5, "0.3-0.5 m", (247, 245, 169)),
    (1.0, "0.5-1 m", (248, 225, 166)),
    (3.0, "1-3 m", (255, 216, 192)),
    (5.0, "3-5 m", (255, 183, 183)),
    (10.0, "5-10 m", (255, 145, 145)),
    (20.0, "10-20 m", (242, 133, 201)),
    (math.inf, ">= 20 m", (220, 122, 220)),
]
#: upper bounds of classes 1-7 (m), the breaks of the palette
DEPTH_BREAKS = tuple(upper for upper, _, _ in DEPTH_CLASSES[:-1])
SOURCE = ("MLIT 水害ハザードマップ作成の手引き (2016), detailed palette; inundation from "
          "0.01 m (Cabinet Office)")


def lower_bound(k: int) -> float:
    """Lower depth bound (m) of class ``k`` (1-8)."""
    return FLOODED if k == 1 else DEPTH_CLASSES[k - 2][0]


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def classify_depth(depth: np.ndarray) -> np.ndarray:
    """Depth class 1-8 where depth >= 1 cm, else 0 (dry, sea, no data: NaN)."""
    h = np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.0)
    edges = np.array([FLOODED, *DEPTH_BREAKS], dtype=np.float32)
    return np.searchsorted(edges, h, side="right").astype(np.uint8)
