"""STAC metadata: an Item per forecast listing every product, a Collection per event.

Built with pystac. Each asset carries its role and media type; rasters also carry the
projection (proj:code, proj:shape, proj:transform), raster (nodata, data type, unit) and,
for the depth classes, classification extension fields. Forecast-level facts (event,
forecast number, origin and issue times, model version, source type, the wall time of
each pipeline stage) are Item properties prefixed ``tsunami:``.

Validation runs offline against the STAC core Item schema that pystac ships; extension
schemas would have to be fetched from the web, which a warning centre's network may not
allow, so their fields are checked by the tests instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.validation import validate_dict
from shapely.geometry import box, mapping
from shapely.ops import unary_union

from tsunami.products.layers import DEPTH_CLASSES, Layer

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
MEDIA = {".tif": COG, ".geojson": "application/geo+json", ".png": "image/png",
         ".nc": "application/x-netcdf", ".csv": "text/csv", ".json": "application/json",
         ".gpkg": "application/geopackage+sqlite3", ".qml": "application/xml"}


@dataclass
class Asset:
    """A product file and how a catalogue should describe it."""

    path: Path
    title: str
    roles: list[str]
    media_type: str | None = None
    layer: Layer | None = None
    extra: dict = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.media_type or MEDIA.get(self.path.suffix.lower(), "application/octet-stream")


@dataclass
class ForecastInfo:
    """What identifies a forecast and how it was made."""

    event_id: str
    forecast_number: int
    issue_time: datetime
    origin_time: datetime | None
    model_version: str
    source_type: str
    region: str
    scenario: str
    timings_s: dict[str, float] = field(default_factory=dict)
    description: str = ""

    @property
    def item_id(self) -> str:
        return f"{self.event_id}-forecast-{self.forecast_number:03d}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def forecast_item(info: ForecastInfo, assets: list[Asset], footprints: list[tuple]) -> dict:
    """The STAC Item (as a dict) of one forecast; asset hrefs relative to its folder.

    ``footprints`` are (west, south, east, north) boxes in EPSG:4326.
    """
    area = unary_union([box(*b) for b in footprints])
    item = pystac.Item(
        id=info.item_id, geometry=mapping(area), bbox=list(area.bounds),
        datetime=info.issue_time,
        properties={
            "title": f"Tsunami forecast {info.forecast_number} for {info.event_id}",
            "description": info.description or f"{info.scenario} on {info.region}",
            "created": _iso(info.issue_time),
            "tsunami:event_id": info.event_id,
            "tsunami:forecast_number": info.forecast_number,
            "tsunami:issue_time": _iso(info.issue_time),
            "tsunami:origin_time": _iso(info.origin_time),
            "tsunami:model_version": info.model_version,
            "tsunami:source_type": info.source_type,
            "tsunami:region": info.region,
            "tsunami:scenario": info.scenario,
            "tsunami:timings_s": {k: round(float(v), 3) for k, v in info.timings_s.items()},
        })
    ProjectionExtension.add_to(item)
    RasterExtension.add_to(item)
    ClassificationExtension.add_to(item)
    for asset in assets:
        stac_asset = pystac.Asset(href=asset.path.name, title=asset.title,
                                  media_type=asset.type, roles=asset.roles,
                                  extra_fields=dict(asset.extra))
        item.add_asset(asset.path.stem, stac_asset)
        if asset.layer is not None:
            layer = asset.layer
            proj = ProjectionExtension.ext(stac_asset)
            proj.code = f"EPSG:{layer.crs.to_epsg()}" if layer.crs.to_epsg() else None
            if proj.code is None:
                proj.wkt2 = layer.crs.to_wkt()
            proj.shape = list(layer.shape)
            proj.transform = list(layer.transform)[:6]
            band = RasterBand.create(nodata=layer.nodata,
                                     data_type=DataType(str(layer.values.dtype)),
                                     unit=layer.unit)
            RasterExtension.ext(stac_asset).bands = [band]
            if layer.categories:
                ClassificationExtension.ext(stac_asset).classes = [
                    Classification.create(value=0, name="not_flooded",
                                          description="depth below 0.01 m, sea or outside")
                ] + [Classification.create(
                    value=k, name=f"depth_class_{k}", description=label,
                    color_hint="{:02X}{:02X}{:02X}".format(*rgb))
                    for k, (_, label, rgb) in enumerate(DEPTH_CLASSES, start=1)]
    return item.to_dict(include_self_link=False)


def validate_item(item: dict) -> None:
    """Validate against the STAC core Item schema (offline); raises on failure."""
    validate_dict(item, stac_object_type=pystac.STACObjectType.ITEM, extensions=[])


def event_collection(event_id: str, items: list[dict], description: str) -> dict:
    """The STAC Collection of an event, linking every published forecast's Item."""
    boxes = [box(*i["bbox"]) for i in items]
    times = sorted(i["properties"]["datetime"] for i in items)
    origins = [i["properties"].get("tsunami:origin_time") for i in items]
    start = min([o for o in origins if o] + times[:1])
    extent = pystac.Extent(
        pystac.SpatialExtent([list(unary_union(boxes).bounds)]),
        pystac.TemporalExtent([[datetime.fromisoformat(start.replace("Z", "+00:00")),
                                datetime.fromisoformat(times[-1].replace("Z", "+00:00"))]]))
    collection = pystac.Collection(id=event_id, description=description, extent=extent,
                                   license="other", title=f"Tsunami forecasts for {event_id}")
    data = collection.to_dict(include_self_link=False)
    for i in items:
        n = i["properties"]["tsunami:forecast_number"]
        data["links"].append({"rel": "item", "href": f"forecast-{n:03d}/item.json",
                              "type": "application/geo+json", "title": i["properties"]["title"]})
    return data


def write_json(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path
