"""Inundation extent as GeoJSON polygons, one feature per depth class.

Polygons are traced from the classified depth layer in the output (projected) CRS with
rasterio, merged per class with shapely, and transformed to longitude/latitude (EPSG:4326,
as RFC 7946 requires) with pyproj. Exterior rings run counter-clockwise and holes
clockwise (RFC 7946 section 3.1.6); coordinates are rounded to 1e-7 degree (about 1 cm).
Each feature also carries the forecast's identity (event, forecast number, issue time),
so that a feature imported into another tool still says which forecast it came from.
Property names have at most 10 characters, so a Shapefile export keeps them: depth_cls
(1-8), label, depth_lo_m, depth_hi_m (None for the last class), colour, area_m2,
event_id, forecast, issued.
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

from tsunami.depth_classes import DEPTH_CLASSES, hex_colour, lower_bound
from tsunami.products.layers import Layer

#: identity key -> property name
IDENTITY_PROPERTIES = {"event_id": "event_id", "forecast_number": "forecast",
                       "issue_time": "issued"}


def _polygons(geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def extent_features(depth_class: Layer, identity: dict[str, str] | None = None) -> dict:
    """A GeoJSON FeatureCollection (dict) of the flooded area per depth class;
    ``identity`` (event_id, forecast_number, issue_time, ...) is added to every feature
    and to the collection."""
    identity = dict(identity or {})
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
        features.append({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "depth_cls": k, "label": label, "depth_lo_m": lower_bound(k),
                "depth_hi_m": None if not np.isfinite(upper) else upper,
                "colour": hex_colour(rgb), "area_m2": float(mask.sum() * cell_area),
                **{column: identity[key] for key, column in IDENTITY_PROPERTIES.items()
                   if key in identity},
            },
        })
    return {"type": "FeatureCollection", "features": features,
            "name": "inundation extent by depth class", "forecast": identity}


def write_geojson(collection: dict, path: Path) -> Path:
    path.write_text(json.dumps(collection, separators=(",", ":")))
    return path
