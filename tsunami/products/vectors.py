"""Inundation extent as GeoJSON polygons, one feature per depth class.

Polygons are traced from the classified depth layer in the output (projected) CRS with
rasterio, merged per class with shapely, and transformed to longitude/latitude (EPSG:4326,
as RFC 7946 requires) with pyproj. Exterior rings run counter-clockwise and holes
clockwise (RFC 7946 section 3.1.6); coordinates are rounded to 1e-7 degree (about 1 cm).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from rasterio.features import shapes
from shapely import make_valid
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from tsunami.products.layers import DEPTH_CLASSES, Layer


def _polygons(geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def extent_features(depth_class: Layer) -> dict:
    """A GeoJSON FeatureCollection (dict) of the flooded area per depth class."""
    to_lonlat = Transformer.from_crs(depth_class.crs, 4326, always_xy=True)
    values = depth_class.values
    cell_area = abs(depth_class.transform.a * depth_class.transform.e)
    features = []
    for k, (upper, label, rgb) in enumerate(DEPTH_CLASSES, start=1):
        mask = values == k
        if not mask.any():
            continue
        pieces = [shape(geom) for geom, _ in shapes(values, mask=mask,
                                                    transform=depth_class.transform)]
        merged = make_valid(unary_union(pieces))
        polygons = [orient(p, sign=1.0) for p in _polygons(merged)]
        lonlat = shapely.transform(MultiPolygon(polygons), lambda xy: np.column_stack(
            to_lonlat.transform(xy[:, 0], xy[:, 1])))
        geometry = json.loads(json.dumps(mapping(lonlat)), parse_float=lambda s: round(
            float(s), 7))
        lower = DEPTH_CLASSES[k - 2][0] if k > 1 else 0.01
        features.append({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "depth_class": k, "label": label, "depth_min_m": lower,
                "depth_max_m": None if not np.isfinite(upper) else upper,
                "colour": "#{:02X}{:02X}{:02X}".format(*rgb),
                "area_m2": float(mask.sum() * cell_area),
            },
        })
    return {"type": "FeatureCollection", "features": features,
            "name": "inundation extent by depth class"}


def write_geojson(collection: dict, path: Path) -> Path:
    path.write_text(json.dumps(collection, separators=(",", ":")))
    return path
